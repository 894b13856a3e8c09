//! The origin's security rules, tried as an attacker would: every checkout
//! route of a queue-protected event refuses a request without access, however
//! its id is spelled; sessions end when they end; the origin names buyers;
//! hostile input gets a problem and changes nothing; organizers are isolated.

use origin_inventory::test_support::test_keyring;
use queue_tokens::{AccessClaims, Kind};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, read, small_venue_spec, spawn_app};

fn token(event: &str, visitor: &str, jti: &str) -> String {
    let ring = test_keyring();
    let claims = AccessClaims {
        iss: ring.issuer().into(),
        sub: visitor.into(),
        aud: event.into(),
        iat: chrono::Utc::now().timestamp(),
        exp: chrono::Utc::now().timestamp() + 600,
        jti: jti.into(),
    };
    ring.sign(Kind::Access, &claims)
}

async fn queued_event(app: &TestApp) -> String {
    let queue = json!({"enabled": true, "new_users_per_minute": 60, "total_active_users": 10,
        "session_duration_seconds": 600});
    app.on_sale_event(json!({ "queue": queue })).await["id"].as_str().unwrap().to_owned()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).header("idempotency-key", "attack");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

/// Ways to write the same id in a path that a lenient router decodes to it.
fn spellings(id: &str) -> Vec<String> {
    let encoded_first = format!("%{:02X}{}", id.as_bytes()[0], &id[1..]);
    let all_encoded: String = id.bytes().map(|b| format!("%{b:02x}")).collect();
    vec![id.to_owned(), id.to_uppercase(), encoded_first, all_encoded]
}

/// Registrations that bypass `utoipa_axum::routes!` (plain `.route`,
/// `.nest`, `.route_service`), read from the source: such a route would
/// serve without being described, and probing the document would miss it.
fn registrations_outside_the_document() -> Vec<String> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                for (number, line) in code.lines().enumerate() {
                    if [".route(", ".nest(", ".route_service(", ".nest_service("]
                        .iter()
                        .any(|r| line.contains(r))
                    {
                        found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                    }
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn no_route_of_a_queue_protected_event_runs_without_access_however_its_id_is_spelled() {
    let app = spawn_app().await;
    let event = queued_event(&app).await;
    let section = app.a_section_of(&event).await;
    let visitor = token(&event, "visitor-1", "jti-visitor-1");
    let hold = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, reservation) =
        send(&app, Method::POST, &format!("/api/v1/events/{event}/reservations"), Some(&visitor), Some(hold))
            .await;
    assert_eq!(status, 201, "{reservation}");
    let reservation = reservation["reservation_id"].as_str().unwrap().to_owned();

    let (_, openapi) = app.get("/api/openapi.json").await;
    let paths = openapi["paths"].as_object().unwrap();
    assert_eq!(
        registrations_outside_the_document(),
        Vec::<String>::new(),
        "every route is registered with its description"
    );

    // Public by design: the catalog entry and the waiting room's settings.
    let public = ["/api/v1/events/{id}", "/api/v1/events/{id}/waiting-room"];
    let mut probed = 0;
    for (template, operations) in paths {
        let id = if template.starts_with("/api/v1/events/{id}") || template.starts_with("/events/{id}") {
            &event
        } else if template.starts_with("/api/v1/reservations/{id}") {
            &reservation
        } else {
            continue;
        };
        if public.contains(&template.as_str()) {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for spelled in spellings(id) {
                let path = template.replace("{id}", &spelled);
                let body = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1,
                    "payment_method_id": "pm_card_visa", "billing_details": {"name": "M", "email": "m@x.io"},
                    "additional_seconds": 60});
                let (status, answer) = send(&app, method.clone(), &path, None, Some(body)).await;
                let code = answer["error"].as_str();
                assert!(
                    (status, code) == (401, Some("access_token_required"))
                        || (status == 404 && spelled != *id),
                    "{method} {path} without a token answered {status} {answer}"
                );
                probed += 1;
            }
        }
    }
    assert!(probed >= 7 * 4, "all checkout operations were probed ({probed})");
    let holds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations").fetch_one(&app.db).await.unwrap();
    assert_eq!(holds, 1, "only the admitted visitor's hold exists");
}

#[tokio::test]
async fn a_session_is_refused_from_the_request_after_it_ends() {
    let app = spawn_app().await;
    let event = queued_event(&app).await;
    let section = app.a_section_of(&event).await;
    let seatmap = format!("/api/v1/events/{event}/seatmap");
    let hold_path = format!("/api/v1/events/{event}/reservations");
    let hold = || json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let pay =
        json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@x.io"}});
    let refused = |answer: (u16, Value)| {
        assert_eq!(
            (answer.0, answer.1["error"].as_str()),
            (401, Some("access_session_ended")),
            "{}",
            answer.1
        );
    };

    // Commit: the order ends the session; a retry of that very commit still
    // hears its answer, anything else is refused.
    let buyer = token(&event, "buyer", "jti-buyer");
    let (_, held) = send(&app, Method::POST, &hold_path, Some(&buyer), Some(hold())).await;
    let commit = format!("/api/v1/reservations/{}/commit", held["reservation_id"].as_str().unwrap());
    let request =
        || app.client.post(app.url(&commit)).bearer_auth(&buyer).header("idempotency-key", "k1").json(&pay);
    let paid = request().send().await.unwrap();
    assert_eq!(paid.status(), 200);
    assert_eq!(paid.headers()["stampede-session-ended"], event.as_str());
    let paid: Value = paid.json().await.unwrap();
    let (status, replay) = read(request().send().await.unwrap()).await;
    assert_eq!((status, &replay), (200, &paid), "the same commit replays its answer");
    refused(send(&app, Method::GET, &seatmap, Some(&buyer), None).await);
    refused(send(&app, Method::POST, &hold_path, Some(&buyer), Some(hold())).await);
    let other_key =
        app.client.post(app.url(&commit)).bearer_auth(&buyer).header("idempotency-key", "k2").json(&pay);
    refused(read(other_key.send().await.unwrap()).await);

    // Release: the freed slot's session is over too.
    let releaser = token(&event, "releaser", "jti-releaser");
    let (_, held) = send(&app, Method::POST, &hold_path, Some(&releaser), Some(hold())).await;
    let path = format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap());
    assert_eq!(send(&app, Method::DELETE, &path, Some(&releaser), None).await.0, 204);
    refused(send(&app, Method::GET, &seatmap, Some(&releaser), None).await);
    refused(send(&app, Method::POST, &hold_path, Some(&releaser), Some(hold())).await);

    // Leaving the queue: the edge ends the session at the origin too.
    let leaver = token(&event, "leaver", "jti-leaver");
    assert_eq!(send(&app, Method::GET, &seatmap, Some(&leaver), None).await.0, 200);
    let access = format!("/api/v1/events/{event}/access");
    assert_eq!(send(&app, Method::DELETE, &access, Some(&leaver), None).await.0, 204);
    assert_eq!(send(&app, Method::DELETE, &access, Some(&leaver), None).await.0, 204, "idempotent");
    refused(send(&app, Method::GET, &seatmap, Some(&leaver), None).await);
    assert_eq!(send(&app, Method::DELETE, &access, None, None).await.0, 401);
    // An ended session hears only its own orders again: the buyer's very
    // request (hold, key and body) from the leaver's token is refused.
    let borrowed =
        app.client.post(app.url(&commit)).bearer_auth(&leaver).header("idempotency-key", "k1").json(&pay);
    refused(read(borrowed.send().await.unwrap()).await);

    // Others' sessions are untouched.
    let bystander = token(&event, "bystander", "jti-bystander");
    assert_eq!(send(&app, Method::GET, &seatmap, Some(&bystander), None).await.0, 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("stampede_access_refusals_total{outcome=\"session_ended\"} 7"), "{metrics}");
}

#[tokio::test]
async fn the_origin_names_buyers_and_orders_open_only_for_their_buyer_or_link() {
    let app = spawn_app().await;
    let event =
        app.on_sale_event(json!({"max_tickets_per_order": 2, "max_tickets_per_buyer": 2})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let section = app.a_section_of(&event).await;
    let hold_path = format!("/api/v1/events/{event}/reservations");
    let hold = |quantity: u32| json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": quantity});

    // A self-chosen header names nobody; neither does a forged session.
    let header_only = app.client.post(app.url(&hold_path)).header("x-buyer-id", "eve").json(&hold(1));
    let (status, answer) = read(header_only.send().await.unwrap()).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("buyer_session_required")), "{answer}");
    let session = app.session("ada").await;
    let forged = session.replace(&app.buyer_id("ada").await, "b_0123456789abcdef0123456789abcdef");
    let (status, _) = send(&app, Method::POST, &hold_path, Some(&forged), Some(hold(1))).await;
    assert_eq!(status, 401, "a session with another buyer id does not verify");

    // The per-buyer limit binds to the session, whatever headers say.
    let (status, held) = app.hold("ada", &event, hold(2)).await;
    assert_eq!(status, 201, "{held}");
    let again =
        app.client.post(app.url(&hold_path)).bearer_auth(&session).header("x-buyer-id", "new").json(&hold(1));
    let (status, answer) = read(again.send().await.unwrap()).await;
    assert_eq!((status, answer["error"].as_str()), (429, Some("limit_exceeded")), "{answer}");

    let pay =
        json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@x.io"}});
    let (status, order) = app.commit("ada", &held, "k", pay).await;
    assert_eq!(status, 200, "{order}");
    let number = order["order_number"].as_str().unwrap();
    let link = order["order_url"].as_str().unwrap();
    let secret = link.rsplit('/').next().unwrap();
    assert_eq!(link, format!("/orders/{number}/{secret}"));
    assert!(secret.len() >= 60 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");

    let own = format!("/api/v1/orders/{number}");
    assert_eq!(app.buyer("ada", Method::GET, &own, None).await.0, 200);
    assert_eq!(app.buyer("eve", Method::GET, &own, None).await.0, 404, "another buyer");
    assert_eq!(app.get(&own).await.0, 404, "nobody");
    let (status, by_link) = app.get(&format!("/api/v1/orders/{number}/{secret}")).await;
    assert_eq!((status, &by_link["tickets"]), (200, &order["tickets"]));
    // The same secret with its last digit changed (to another digit, always).
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_eq!(app.get(&format!("/api/v1/orders/{number}/{wrong}")).await.0, 404);

    // The page behind the link works from a browser with no cookies at all.
    let page = app.client.get(app.url(link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(order["tickets"][0]["code"].as_str().unwrap()), "the page shows the ticket codes");
    let anonymous = app.client.get(app.url(&format!("/orders/{number}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), 404);
    assert!(!anonymous.text().await.unwrap().contains(order["tickets"][0]["code"].as_str().unwrap()));

    // A browser's first visit to a checkout page gets a session cookie.
    let checkout = app.client.get(app.url(&format!("/events/{event}/checkout"))).send().await.unwrap();
    let cookie = checkout.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("stampede_buyer=bs1.") && cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn hostile_input_gets_a_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let counts = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64, i64)>(
                "SELECT (SELECT count(*) FROM venues), (SELECT count(*) FROM events),
                        (SELECT count(*) FROM reservations), (SELECT count(*) FROM seats)",
            )
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let before = counts(&app).await;
    let nul = "A\u{0}B";
    let problem = |(status, body): (u16, Value), expected: u16, code: &str| {
        assert_eq!((status, body["error"].as_str()), (expected, Some(code)), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    };
    let organizer = |method: Method, path: &str, body: Value| {
        let path = path.to_owned();
        let app = &app;
        async move { app.organizer(&app.key, method, &path, Some(body)).await }
    };

    let mut venue = small_venue_spec();
    venue["name"] = json!(nul);
    problem(organizer(Method::POST, "/api/v1/organizer/venues", venue).await, 400, "invalid_text");
    let mut venue = small_venue_spec();
    venue["sections"][0]["rows"][0]["label"] = json!(nul);
    let (status, body) = organizer(Method::POST, "/api/v1/organizer/venues", venue).await;
    problem((status, body.clone()), 400, "invalid_text");
    assert_eq!(body["field"], "/sections/0/rows/0/label");
    for capacity in [2_147_483_648_u64, 4_294_967_295, 200_001] {
        let mut venue = small_venue_spec();
        venue["sections"][1]["capacity"] = json!(capacity);
        let (status, body) = organizer(Method::POST, "/api/v1/organizer/venues", venue).await;
        assert_eq!(status, 422, "capacity {capacity}: {body}");
    }
    let event_path = format!("/api/v1/organizer/events/{id}");
    problem(organizer(Method::PATCH, &event_path, json!({"title": nul})).await, 400, "invalid_text");
    problem(organizer(Method::PATCH, &event_path, json!({"description": nul})).await, 400, "invalid_text");
    let queue = json!({"enabled": true, "new_users_per_minute": 60, "total_active_users": 10,
        "session_duration_seconds": 600, "message": nul});
    problem(organizer(Method::PUT, &format!("{event_path}/queue"), queue).await, 400, "invalid_text");
    problem(
        organizer(Method::PUT, "/api/v1/organizer/webhook", json!({"url": "https://x.io/\u{0}"})).await,
        400,
        "invalid_text",
    );
    let section = app.a_section_of(id).await;
    let (status, held) = app
        .hold(
            "ada",
            id,
            json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let pay =
        json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": nul, "email": "a@x.io"}});
    problem(app.commit("ada", &held, "k", pay).await, 400, "invalid_text");
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments").fetch_one(&app.db).await.unwrap();
    assert_eq!(payments, 0, "nothing was charged");
    app.buyer(
        "ada",
        Method::DELETE,
        &format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap()),
        None,
    )
    .await;
    sqlx::query("DELETE FROM reservation_seats").execute(&app.db).await.unwrap();
    sqlx::query("DELETE FROM buyer_tickets").execute(&app.db).await.unwrap();
    sqlx::query("DELETE FROM reservations").execute(&app.db).await.unwrap();

    for query in ["q=%00", "city=%00", "category=A%00", "q=%zz", "q=%C3", "limit=-1", "nonsense=1"] {
        problem(app.get(&format!("/api/v1/events?{query}")).await, 400, "invalid_query");
    }
    // Ids that do not parse name nothing; unknown actions and methods are problems too.
    problem(
        app.organizer(&app.key, Method::GET, "/api/v1/organizer/events/not-a-uuid", None).await,
        404,
        "not_found",
    );
    problem(
        app.organizer(&app.key, Method::GET, "/api/v1/organizer/venues/%00", None).await,
        400,
        "invalid_text",
    );
    problem(
        app.organizer(&app.key, Method::POST, &format!("{event_path}/explode"), Some(json!({}))).await,
        404,
        "not_found",
    );
    for path in ["/api/v1/reservations/not-a-uuid", "/api/v1/orders/%00", "/api/v1/events/zz/seatmap"] {
        let (status, body) = app.buyer("ada", Method::GET, path, None).await;
        assert!(matches!(status, 400 | 404) && body["error"].is_string(), "{path}: {status} {body}");
    }
    problem(send(&app, Method::PUT, "/api/v1/events", None, None).await, 405, "method_not_allowed");
    let huge = vec![b'x'; 300 * 1024];
    let response = app.client.post(app.url("/webhooks/payments/sandbox")).body(huge).send().await.unwrap();
    problem(read(response).await, 413, "body_too_large");
    let signed = |body: &str| {
        let t = chrono::Utc::now().timestamp();
        origin_inventory::signatures::sign(crate::helpers::TEST_WEBHOOK_SECRET, t, body.as_bytes())
    };
    let body =
        json!({"id": "evt_\u{0}", "type": "payment_intent.succeeded", "data": {"object": {}}}).to_string();
    let response = app
        .client
        .post(app.url("/webhooks/payments/sandbox"))
        .header("stripe-signature", signed(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    problem(read(response).await, 400, "invalid_text");
    assert_eq!(counts(&app).await, before, "nothing was created by any of it");
}

#[tokio::test]
async fn a_provisioned_organizer_cannot_touch_another_organizers_data() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let venue = event["venue_id"].as_str().unwrap();
    let (status, held) = app
        .hold("ada", id, json!({"client_reservation_id": Uuid::new_v4(), "section_id": app.a_section_of(id).await, "quantity": 1}))
        .await;
    assert_eq!(status, 201);
    let pay =
        json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada", "email": "ada@x.io"}});
    let (_, order) = app.commit("ada", &held, "k", pay).await;
    let number = order["order_number"].as_str().unwrap();

    // The product's own command provisions the intruder, printing its key once.
    let database_url: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&app.db).await.unwrap();
    let admin = std::env::var("STAMPEDE_TEST_DATABASE_URL").unwrap();
    let url = format!("{}/{database_url}", admin.rsplit_once('/').unwrap().0);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_origin-inventory"))
        .args(["organizer", "create", "--name", "Intruder Ltd"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().find_map(|l| l.strip_prefix("api_key=")).unwrap().to_owned();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM organizers WHERE name = 'Intruder Ltd' AND api_key_hash = sha256($1::text::bytea)")
        .bind(&key)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the key's hash is stored");

    let as_intruder = |method: Method, path: String, body: Option<Value>| {
        let key = key.clone();
        let app = &app;
        async move { app.organizer(&key, method, &path, body).await }
    };
    let queue = json!({"enabled": true, "new_users_per_minute": 1, "total_active_users": 1, "session_duration_seconds": 60});
    let attempts = [
        (Method::GET, format!("/api/v1/organizer/venues/{venue}"), None),
        (Method::GET, format!("/api/v1/organizer/events/{id}"), None),
        (Method::PATCH, format!("/api/v1/organizer/events/{id}"), Some(json!({"title": "Mine now"}))),
        (Method::PUT, format!("/api/v1/organizer/events/{id}/queue"), Some(queue)),
        (Method::POST, format!("/api/v1/organizer/events/{id}/close"), Some(json!({}))),
        (Method::POST, format!("/api/v1/organizer/events/{id}/cancel"), Some(json!({}))),
        (Method::GET, format!("/api/v1/organizer/events/{id}/sales"), None),
        (Method::POST, format!("/api/v1/organizer/orders/{number}/refund"), None),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = as_intruder(method.clone(), path.clone(), body).await;
        assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")), "{method} {path}: {answer}");
    }
    let (_, listed) = as_intruder(Method::GET, "/api/v1/organizer/events".into(), None).await;
    assert_eq!(listed["data"], json!([]));
    let draft =
        json!({"venue_id": venue, "title": "x", "category": "x", "starts_at": "2030-01-01T00:00:00Z"});
    assert_eq!(as_intruder(Method::POST, "/api/v1/organizer/events".into(), Some(draft)).await.0, 404);

    let (_, mine) =
        app.organizer(&app.key, Method::GET, &format!("/api/v1/organizer/events/{id}"), None).await;
    assert_eq!((mine["title"].as_str(), mine["status"].as_str()), (Some("Test Show"), Some("on_sale")));
    assert_eq!(mine["queue"]["enabled"], false, "{mine}");
    let (_, order_now) = app.buyer("ada", Method::GET, &format!("/api/v1/orders/{number}"), None).await;
    assert_eq!(order_now["status"], "paid");
}
