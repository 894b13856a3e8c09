//! The buyer's pages as a browser fetches them: what the first load of an
//! arena's checkout costs on the wire, the live hold a reload gets back,
//! and the order page's event, venue and local time.

use origin_inventory::demo;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::checkout::{card_for, held};
use crate::helpers::{TestApp, spawn_app};

/// The checkout page's embedded configuration, as its script reads it.
fn page_config(html: &str) -> Value {
    let start = html.find("id=\"checkout-config\">").expect("the page carries its configuration") + 21;
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

async fn page_as(app: &TestApp, buyer: &str, path: &str) -> String {
    let response = app.client.get(app.url(path)).bearer_auth(app.session(buyer).await).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Bytes on the wire for `path` when the client accepts `encoding`.
async fn wire_bytes(app: &TestApp, path: &str, encoding: &str) -> usize {
    let response = app.client.get(app.url(path)).header("accept-encoding", encoding).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-encoding"], encoding, "{path} is compressed as asked");
    response.bytes().await.unwrap().len()
}

#[tokio::test]
async fn an_arena_checkout_first_load_is_small_on_the_wire() {
    let app = spawn_app().await;
    let arena = demo::seed(&app.db, "sk_demo_pages").await.unwrap().on_sale_event;
    // The page without the waiting room in front (that is the edge's part).
    sqlx::query("UPDATE events SET queue_enabled = false WHERE id = $1")
        .bind(arena)
        .execute(&app.db)
        .await
        .unwrap();
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory WHERE event_id = $1")
        .bind(arena)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(seats > 5_000, "an arena: {seats} seats");

    let page = app.client.get(app.url(&format!("/events/{arena}/checkout"))).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("class=\"section-pick\"").count(), 9, "an overview of the sections");
    // Seats are drawn per section from the seat map, not sent in the page.
    assert!(html.len() < 50_000, "{} bytes of HTML for {seats} seats", html.len());
    for encoding in ["gzip", "br"] {
        let first_load = wire_bytes(&app, &format!("/events/{arena}/checkout"), encoding).await
            + wire_bytes(&app, &format!("/api/v1/events/{arena}/seatmap"), encoding).await;
        assert!(first_load <= 150_000, "{encoding}: {first_load} bytes");
    }
    // Revalidating the map costs a 304 while nothing changed.
    let map = app.client.get(app.url(&format!("/api/v1/events/{arena}/seatmap"))).send().await.unwrap();
    let etag = map.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url(&format!("/api/v1/events/{arena}/seatmap")))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn a_reloaded_checkout_page_brings_back_the_buyers_live_hold_and_no_one_elses() {
    let app = spawn_app().await;
    let (event, hold) = held(&app, "ada", 2).await;
    let checkout = format!("/events/{event}/checkout");

    let config = page_config(&page_as(&app, "ada", &checkout).await);
    assert_eq!(config["hold"]["reservation_id"], hold["reservation_id"]);
    assert_eq!(config["hold"]["seats"].as_array().unwrap().len(), 2);
    assert_eq!(
        page_config(&page_as(&app, "bob", &checkout).await)["hold"],
        Value::Null,
        "not another buyer's"
    );
    let current = format!("/api/v1/events/{event}/reservations/current");
    let (status, current_hold) = app.buyer("ada", Method::GET, &current, None).await;
    assert_eq!((status, &current_hold["reservation_id"]), (200, &hold["reservation_id"]), "{current_hold}");
    // Small answers of the order path are not worth compressing.
    let small = app
        .client
        .get(app.url(&current))
        .bearer_auth(app.session("ada").await)
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none(), "{:?}", small.headers());
    let (status, none) = app.buyer("bob", Method::GET, &current, None).await;
    assert_eq!((status, none["error"].as_str()), (404, Some("no_live_hold")), "{none}");

    // A lapsed hold is not brought back.
    app.expire(&hold).await;
    assert_eq!(page_config(&page_as(&app, "ada", &checkout).await)["hold"], Value::Null);
    let (status, _) = app.buyer("ada", Method::GET, &current, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn names_in_the_page_configuration_cannot_close_its_script() {
    let app = spawn_app().await;
    let (event, _) = held(&app, "ada", 1).await;
    sqlx::query("UPDATE price_tiers SET name = '</script><script>alert(1)</script>'")
        .execute(&app.db)
        .await
        .unwrap();
    let html = page_as(&app, "ada", &format!("/events/{event}/checkout")).await;
    assert!(!html.contains("</script><script>alert(1)"), "the tier name stays inside the JSON");
    assert_eq!(page_config(&html)["hold"]["seats"][0]["tier"], "</script><script>alert(1)</script>");
}

#[tokio::test]
async fn the_order_page_names_the_event_the_venue_and_the_local_time() {
    let app = spawn_app().await;
    let (_, hold) = held(&app, "ada", 1).await;
    let (status, order) =
        app.commit("ada", &hold, &Uuid::new_v4().to_string(), card_for("ada@example.com")).await;
    assert_eq!(status, 200, "{order}");
    // A fresh client: the secret link is all it has.
    let page = reqwest::get(app.url(order["order_url"].as_str().unwrap())).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let event: (String, String) = sqlx::query_as(
        "SELECT e.title, v.name FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = $1::uuid",
    )
    .bind(hold["event_id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(html.contains(&format!("<h1>{}</h1>", event.0)), "the event's title heads the page");
    assert!(html.contains(&event.1), "the venue");
    // The venue is in Berlin: the show (19:00 UTC in June) is at 21:00 CEST there.
    assert!(html.contains("21:00 CEST"), "the start in the venue's time");
    assert!(!html.contains(" UTC"), "no time is shown in UTC");
    assert!(html.contains(order["order_number"].as_str().unwrap()));
}
