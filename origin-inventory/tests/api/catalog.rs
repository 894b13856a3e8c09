use origin_inventory::demo;
use reqwest::header;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn published_events_are_listed_with_prices_and_availability() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let venue = app.small_venue().await;
    let (status, draft) = app
        .post("/api/v1/organizer/events",
            json!({"venue_id": venue["id"], "title": "Secret", "category": "music", "starts_at": "2030-01-01T20:00:00Z"}))
        .await;
    assert_eq!(status, 201, "{draft}");

    let (status, list) = app.get("/api/v1/events").await;
    assert_eq!(status, 200);
    assert_eq!(list["meta"], json!({"total": 1, "page": 1, "limit": 20}));
    let listed = &list["data"][0];
    assert_eq!(listed["id"], event["id"]);
    assert_eq!(listed["price_range"], json!({"min_cents": 2500, "max_cents": 5000, "currency": "EUR"}));
    assert_eq!(listed["availability"], json!({"total_seats": 20, "available_seats": 20}));
    assert_eq!(listed["venue"]["timezone"], "Europe/Berlin");
    assert_eq!(app.get(&format!("/api/v1/events/{}", draft["id"].as_str().unwrap())).await.0, 404);
}

#[tokio::test]
async fn filters_and_paging_narrow_the_list() {
    let app = spawn_app().await;
    app.on_sale_event(json!({"title": "Rock Night", "category": "music"})).await;
    app.on_sale_event(
        json!({"title": "Stand-up 100% Live", "category": "comedy", "starts_at": "2031-01-01T20:00:00Z"}),
    )
    .await;
    let titles = |list: &serde_json::Value| -> Vec<String> {
        list["data"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(titles(&app.get("/api/v1/events?category=comedy").await.1), ["Stand-up 100% Live"]);
    assert_eq!(titles(&app.get("/api/v1/events?q=rock").await.1), ["Rock Night"]);
    assert_eq!(titles(&app.get("/api/v1/events?q=100%25").await.1), ["Stand-up 100% Live"]);
    assert_eq!(titles(&app.get("/api/v1/events?q=%25").await.1), ["Stand-up 100% Live"], "% is literal");
    assert_eq!(
        titles(&app.get("/api/v1/events?city=berlin&to=2030-12-31T00:00:00Z").await.1),
        ["Rock Night"]
    );
    assert_eq!(titles(&app.get("/api/v1/events?q=%27%20OR%201%3D1%20--").await.1), Vec::<String>::new());
    let (_, page2) = app.get("/api/v1/events?limit=1&page=2").await;
    assert_eq!(titles(&page2), ["Stand-up 100% Live"]);
    assert_eq!(page2["meta"]["total"], 2);
    for bad in ["limit=0", "limit=101", "page=0", "page=x", "from=yesterday", "unknown=1"] {
        let (status, body) = app.get(&format!("/api/v1/events?{bad}")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_seat_map_has_sections_rows_and_an_etag() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let path = app.url(&format!("/api/v1/events/{}/seatmap", event["id"].as_str().unwrap()));
    let response = app.client.get(&path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()[header::ETAG].clone();
    let map: serde_json::Value = response.json().await.unwrap();
    let sections = map["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2);
    assert_eq!(sections[0]["name"], "Seated");
    assert_eq!(sections[0]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(sections[0]["rows"][0]["seats"].as_array().unwrap().len(), 5);
    assert_eq!(sections[1]["general_admission"], true);
    let again = app.client.get(&path).header(header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), 304);

    sqlx::query("UPDATE inventory SET status = 'BLOCKED' WHERE seat_id = $1::text::uuid")
        .bind(sections[0]["rows"][0]["seats"][0]["id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let changed = app.client.get(&path).header(header::IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(changed.status(), 200, "a changed map is a new representation");
}

#[tokio::test]
async fn demo_data_loads_once_and_is_found_again() {
    let app = spawn_app().await;
    let first = demo::seed(&app.db, "sk_demo_test").await.unwrap();
    let second = demo::seed(&app.db, "sk_demo_test").await.unwrap();
    assert_eq!(first.on_sale_event, second.on_sale_event);
    let (status, event) = app.get(&format!("/api/v1/events/{}", first.on_sale_event)).await;
    assert_eq!(status, 200);
    assert!(event["availability"]["total_seats"].as_i64().unwrap() >= 5000);
    assert_eq!(event["queue"]["enabled"], true);
    assert_eq!(event["status"], "on_sale");
    let (_, list) = app.get("/api/v1/events").await;
    assert_eq!(list["meta"]["total"], 3, "the draft stays hidden");
    let sections: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT tier_id) FROM seats").fetch_one(&app.db).await.unwrap();
    assert_eq!(sections, 4);
}
