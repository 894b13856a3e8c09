use reqwest::Method;
use serde_json::json;

use crate::helpers::{small_venue_spec, spawn_app};

#[tokio::test]
async fn a_venue_is_created_with_its_whole_seat_map() {
    let app = spawn_app().await;
    let venue = app.small_venue().await;
    assert_eq!(venue["seats"], 20);
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE venue_id = $1::text::uuid")
        .bind(venue["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(seats, 20);
}

#[tokio::test]
async fn an_event_gets_one_inventory_row_per_seat_and_starts_as_draft() {
    let app = spawn_app().await;
    let venue = app.small_venue().await;
    let (status, event) = app
        .post(
            "/api/v1/organizer/events",
            json!({"venue_id": venue["id"], "title": "Show", "category": "music", "starts_at": "2030-01-01T20:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["status"], "draft");
    assert_eq!(event["hold_ttl_seconds"], 600);
    assert_eq!(event["max_tickets_per_order"], 4);
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, price_cents FROM inventory WHERE event_id = $1::text::uuid ORDER BY price_cents",
    )
    .bind(event["id"].as_str().unwrap())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|(status, _)| status == "AVAILABLE"));
    assert_eq!(rows.iter().filter(|(_, price)| *price == 2500).count(), 10);
}

#[tokio::test]
async fn organizers_cannot_see_or_change_each_others_data() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let other = app.other_organizer().await;
    let path = format!("/api/v1/organizer/events/{id}");
    assert_eq!(app.organizer(&other, Method::GET, &path, None).await.0, 404);
    assert_eq!(app.organizer(&other, Method::PATCH, &path, Some(json!({"title": "Mine"}))).await.0, 404);
    assert_eq!(app.organizer(&other, Method::POST, &format!("{path}/cancel"), Some(json!({}))).await.0, 404);
    let (_, list) = app.organizer(&other, Method::GET, "/api/v1/organizer/events", None).await;
    assert_eq!(list["data"], json!([]));
    let venue = format!("/api/v1/organizer/venues/{}", event["venue_id"].as_str().unwrap());
    assert_eq!(app.organizer(&other, Method::GET, &venue, None).await.0, 404);
    let (status, _) = app
        .organizer(&other, Method::POST, "/api/v1/organizer/events",
            Some(json!({"venue_id": event["venue_id"], "title": "x", "category": "x", "starts_at": "2030-01-01T00:00:00Z"})))
        .await;
    assert_eq!(status, 404, "an event at someone else's venue");
    let (_, mine) = app.organizer(&app.key, Method::GET, &path, None).await;
    assert_eq!(mine["title"], "Test Show");
    assert_eq!(mine["status"], "on_sale");
}

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthorized() {
    let app = spawn_app().await;
    let (status, body) = app.organizer("sk_wrong", Method::GET, "/api/v1/organizer/events", None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    let response = app.client.get(app.url("/api/v1/organizer/events")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"stampede\"",
        "says how to authenticate"
    );
}

#[tokio::test]
async fn created_resources_say_where_they_are() {
    let app = spawn_app().await;
    let created = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 201);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        (location, body)
    };
    let venue =
        app.client.post(app.url("/api/v1/organizer/venues")).bearer_auth(&app.key).json(&small_venue_spec());
    let (location, venue) = created(venue.send().await.unwrap()).await;
    assert_eq!(location, format!("/api/v1/organizer/venues/{}", venue["id"].as_str().unwrap()));
    let (status, read) = app.organizer(&app.key, Method::GET, &location, None).await;
    assert_eq!((status, &read["id"]), (200, &venue["id"]), "{read}");

    let event = json!({"venue_id": venue["id"], "title": "Show", "category": "music",
        "starts_at": "2030-01-01T20:00:00Z", "sale_starts_at": "2020-01-01T00:00:00Z"});
    let post = app.client.post(app.url("/api/v1/organizer/events")).bearer_auth(&app.key).json(&event);
    let (location, event) = created(post.send().await.unwrap()).await;
    let (status, read) = app.organizer(&app.key, Method::GET, &location, None).await;
    assert_eq!((status, &read["id"]), (200, &event["id"]), "{read}");
    let id = event["id"].as_str().unwrap();
    app.post(&format!("/api/v1/organizer/events/{id}/publish"), json!({})).await;

    let section = app.a_section_of(id).await;
    let hold = app
        .client
        .post(app.url(&format!("/api/v1/events/{id}/reservations")))
        .bearer_auth(app.session("ada").await)
        .json(&json!({"client_reservation_id": uuid::Uuid::new_v4(), "section_id": section, "quantity": 1}));
    let (location, hold) = created(hold.send().await.unwrap()).await;
    let (status, read) = app.buyer("ada", Method::GET, &location, None).await;
    assert_eq!((status, &read["reservation_id"]), (200, &hold["reservation_id"]), "{read}");
}

#[tokio::test]
async fn queue_settings_change_only_the_fields_sent() {
    let app = spawn_app().await;
    // A new event's queue needs only what differs from the defaults.
    let event = app
        .on_sale_event(json!({"queue": {"enabled": true, "message": "Hello", "accent_color": "#0e7490"}}))
        .await;
    assert_eq!(event["queue"]["enabled"], true);
    assert_eq!(event["queue"]["new_users_per_minute"], 600, "the documented default");
    let path = format!("/api/v1/organizer/events/{}/queue", event["id"].as_str().unwrap());

    let (status, paused) = app.organizer(&app.key, Method::PUT, &path, Some(json!({"paused": true}))).await;
    assert_eq!(status, 200, "{paused}");
    let mut expected = event["queue"].clone();
    expected["paused"] = json!(true);
    assert_eq!(paused["queue"], expected, "only `paused` changed: message and colour kept");

    let (status, resumed) = app
        .organizer(
            &app.key,
            Method::PATCH,
            &path,
            Some(json!({"paused": false, "new_users_per_minute": 120})),
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(
        (resumed["queue"]["paused"].as_bool(), resumed["queue"]["new_users_per_minute"].as_i64()),
        (Some(false), Some(120))
    );
    assert_eq!(resumed["queue"]["message"], "Hello");

    let (status, refused) = app.organizer(&app.key, Method::PATCH, &path, Some(json!({"pause": true}))).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("invalid_request")),
        "a misspelt field is refused"
    );
    let (status, refused) =
        app.organizer(&app.key, Method::PATCH, &path, Some(json!({"total_active_users": 0}))).await;
    assert_eq!(status, 422, "the whole result is validated: {refused}");
    let (_, now) = app
        .organizer(
            &app.key,
            Method::GET,
            &format!("/api/v1/organizer/events/{}", event["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(now["queue"], resumed["queue"], "a refused change changes nothing");
}

#[tokio::test]
async fn changes_bump_the_catalog_version_and_follow_the_lifecycle() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let path = format!("/api/v1/organizer/events/{}", event["id"].as_str().unwrap());
    let (status, changed) =
        app.organizer(&app.key, Method::PATCH, &path, Some(json!({"title": "Renamed"}))).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["title"], "Renamed");
    assert!(changed["catalog_version"].as_i64() > event["catalog_version"].as_i64());
    let (status, body) = app.post(&format!("{path}/publish"), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("invalid_status_transition")));
    assert_eq!(
        body["message"], "cannot publish an event that is already on sale",
        "in words, not state names"
    );
    let (status, queue) = app
        .organizer(
            &app.key,
            Method::PUT,
            &format!("{path}/queue"),
            Some(json!({
            "enabled": true, "new_users_per_minute": 120, "total_active_users": 50,
            "session_duration_seconds": 300, "prequeue_starts_at": null, "paused": true})),
        )
        .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(
        (queue["queue"]["enabled"].as_bool(), queue["queue"]["paused"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(app.post(&format!("{path}/cancel"), json!({})).await.1["status"], "cancelled");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let venue = app.small_venue().await;
    let events = "/api/v1/organizer/events";
    let valid = json!({"venue_id": venue["id"], "title": "Show", "category": "music", "starts_at": "2030-01-01T20:00:00Z"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("hold_ttl_seconds", json!(5)), 422, "invalid_request"),
        (with("hold_ttl_seconds", json!(99999999999_i64)), 422, "invalid_request"),
        (with("max_tickets_per_order", json!("four")), 422, "invalid_request"),
        (with("starts_at", json!("tomorrow")), 422, "invalid_request"),
        (with("venue_id", json!("not-a-uuid")), 422, "invalid_request"),
        (with("title", json!("")), 422, "invalid_request"),
        (with("surprise", json!(1)), 422, "invalid_request"),
        (with("title", json!("'); DROP TABLE events; --")), 201, ""),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app.post(events, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        if status != 201 {
            assert_eq!(answer["error"], code, "{answer}");
            assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    let malformed = app
        .client
        .post(app.url(events))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let huge = app
        .client
        .post(app.url(events))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body(format!("{{\"title\": \"{}\"}}", "x".repeat(1 << 20)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let not_json =
        app.client.post(app.url(events)).bearer_auth(&app.key).body("title=x").send().await.unwrap();
    assert_eq!(not_json.status(), 415);

    let mut bad_venue = small_venue_spec();
    bad_venue["sections"][0]["tier"] = json!("Z");
    let (status, body) = app.post("/api/v1/organizer/venues", bad_venue).await;
    assert_eq!(status, 422);
    assert!(body["message"].as_str().unwrap().contains("unknown tier `Z`"));

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.db).await.unwrap();
    assert_eq!(count, 1, "only the valid (SQL-looking) title was stored");
    let title: String = sqlx::query_scalar("SELECT title FROM events").fetch_one(&app.db).await.unwrap();
    assert_eq!(title, "'); DROP TABLE events; --");
}

#[tokio::test]
async fn sales_are_summarised_and_a_refund_puts_seats_back_on_sale() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let seats: Vec<String> = sqlx::query_scalar(
        "SELECT seat_id::text FROM inventory WHERE event_id = $1::text::uuid ORDER BY sort_key LIMIT 2",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let (_, hold) =
        app.hold("ada", id, json!({"client_reservation_id": uuid::Uuid::new_v4(), "seat_ids": seats})).await;
    let card = json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@example.com"}});
    let (_, order) = app.commit("ada", &hold, "k", card).await;
    let number = order["order_number"].as_str().unwrap();

    let sales = format!("/api/v1/organizer/events/{id}/sales");
    let (status, summary) = app.organizer(&app.key, Method::GET, &sales, None).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["tickets_sold"].as_i64(), &summary["revenue_cents"]),
        (Some(2), &order["total_cents"])
    );
    assert_eq!((summary["seats_booked"].as_i64(), summary["seats_available"].as_i64()), (Some(2), Some(18)));
    // What the dashboard draws: seats per section and orders per minute.
    let sections: Vec<(String, i64, i64)> = summary["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["booked"].as_i64().unwrap(),
                s["available"].as_i64().unwrap(),
            )
        })
        .collect();
    // The first two seats by sort key: one of each section.
    assert_eq!(sections, [("Seated".to_owned(), 1, 9), ("Standing".to_owned(), 1, 9)]);
    let minutes = summary["per_minute"].as_array().unwrap();
    assert_eq!(minutes.len(), 1, "{summary}");
    assert_eq!((minutes[0]["orders"].as_i64(), minutes[0]["tickets"].as_i64()), (Some(1), Some(2)));
    assert_eq!(minutes[0]["revenue_cents"], order["total_cents"]);
    assert_eq!(summary["currency"], "EUR");

    let other = app.other_organizer().await;
    let refund = format!("/api/v1/organizer/orders/{number}/refund");
    assert_eq!(app.organizer(&other, Method::POST, &refund, None).await.0, 404);
    let (status, refunded) = app.organizer(&app.key, Method::POST, &refund, None).await;
    assert_eq!((status, refunded["status"].as_str()), (200, Some("refunded")), "{refunded}");
    let (status, body) = app.organizer(&app.key, Method::POST, &refund, None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_refunded")));
    let (_, summary) = app.organizer(&app.key, Method::GET, &sales, None).await;
    assert_eq!((summary["tickets_sold"].as_i64(), summary["seats_available"].as_i64()), (Some(0), Some(20)));
    let refunded_charges: i64 = sqlx::query_scalar("SELECT count(*) FROM sandbox_charges WHERE refunded")
        .fetch_one(&app.ledger)
        .await
        .unwrap();
    assert_eq!(refunded_charges, 1);
    let quota: i32 = sqlx::query_scalar("SELECT tickets FROM buyer_tickets WHERE buyer_id = $1")
        .bind(app.buyer_id("ada").await)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(quota, 0, "the buyer may buy again");
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await, (200, json!({"status": "ok"})));
    assert_eq!(app.get("/health/ready").await, (200, json!({"status": "ready"})));
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let seat: String =
        sqlx::query_scalar("SELECT seat_id::text FROM inventory WHERE event_id = $1::text::uuid LIMIT 1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    for _ in 0..2 {
        app.hold(
            &uuid::Uuid::new_v4().to_string(),
            id,
            json!({"client_reservation_id": uuid::Uuid::new_v4(), "seat_ids": [seat]}),
        )
        .await;
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("stampede_holds_total{outcome=\"created\"} 1\n"), "{metrics}");
    assert!(metrics.contains("stampede_holds_total{outcome=\"conflict\"} 1\n"), "{metrics}");
    assert!(metrics.contains("stampede_db_pool_max_connections 40"));
}

/// The document is generated from the handlers: every operation it lists
/// is served, says what its success looks like (a schema for JSON), and
/// refers only to schemas it defines.
#[tokio::test]
async fn the_api_description_lists_what_is_served_and_what_it_answers() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/openapi.json").await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{} paths", paths.len());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "{name} is referred to and defined");
    }
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{action}", "publish")
            .replace("{provider}", "sandbox")
            .replace(['{', '}'], "");
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method: Method = method.to_uppercase().parse().unwrap();
            let response = app.client.request(method.clone(), app.url(&path)).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != 405 && !body.contains("route_not_found"),
                "{method} {template} is described and served: {status} {body}"
            );
            let responses = operation["responses"].as_object().unwrap();
            for (code, answer) in responses {
                let description = answer["description"].as_str().unwrap_or_default();
                assert!(
                    !description.is_empty(),
                    "{method} {template} {code} has a description (OpenAPI 3.1)"
                );
            }
            let success = responses.iter().find(|(code, _)| code.starts_with('2'));
            let (code, answer) =
                success.unwrap_or_else(|| panic!("{method} {template} describes its success"));
            if code != "204" {
                let content = answer["content"].as_object();
                let content = content.unwrap_or_else(|| panic!("{method} {template} {code} has content"));
                if let Some(json) = content.get("application/json") {
                    assert!(json["schema"].is_object(), "{method} {template} {code} has a schema");
                }
            }
            for (code, answer) in
                responses.iter().filter(|(code, _)| code.starts_with('4') || code.starts_with('5'))
            {
                if let Some(json) = answer["content"].get("application/json") {
                    assert_eq!(
                        json["schema"]["$ref"], "#/components/schemas/Problem",
                        "{method} {template} {code} is a problem"
                    );
                }
            }
        }
    }
    assert!(operations >= 37, "{operations} operations");
    assert_eq!(
        doc["components"]["securitySchemes"].as_object().map(|s| s.len()),
        Some(3),
        "organizer key, buyer session and access token"
    );
    let queue = &schemas["QueuePatch"];
    assert!(
        queue["required"].as_array().is_none_or(|r| r.is_empty()),
        "every queue setting is optional: {queue}"
    );
    for field in ["message", "accent_color", "paused", "prequeue_starts_at"] {
        assert!(queue["properties"][field].is_object(), "QueuePatch describes {field}");
    }
}
