//! The edge is the site's one public hostname: besides the catalog and the
//! waiting room, it passes the origin's public paths through untouched
//! (organizer API, payment webhooks, buyer sessions, the API description)
//! and keeps its private ones (metrics, health, the edge's own calls) out
//! of reach. Run through the edge host (`spin.toml`) and the Worker
//! (`wrangler.toml`), which route alike.

mod support;

use origin_inventory::signatures::sign;
use origin_inventory::test_support::TEST_WEBHOOK_SECRET;
use serde_json::json;
use support::{EdgeRuntime, ORGANIZER_KEY, Stack, client, queue};

async fn the_organizer_api_passes_through_with_its_credentials(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let venue = json!({
        "name": "Edge Hall", "city": "Lisbon", "timezone": "Europe/Lisbon",
        "tiers": [{"name": "GA", "price_cents": 2500, "currency": "EUR"}],
        "sections": [{"name": "Floor", "tier": "GA", "capacity": 50}],
    });
    let venues = stack.edge.url("/api/v1/organizer/venues");
    let created = client().post(&venues).bearer_auth(ORGANIZER_KEY).json(&venue).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created_location = created.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let id = created.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let url = stack.edge.url(&format!("/api/v1/organizer/venues/{id}"));
    let read = client().get(&url).bearer_auth(ORGANIZER_KEY).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<serde_json::Value>().await.unwrap()["name"], "Edge Hall");
    assert_eq!(created_at(&created_location), format!("/api/v1/organizer/venues/{id}"));
    // The origin's own refusal reaches the caller, saying how to authenticate.
    let anonymous = client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer realm=\"stampede\"");
}

fn created_at(location: &Option<String>) -> String {
    location.clone().expect("a 201 says where the resource is")
}

/// A method an edge path does not take is a 405 that lists the ones it does.
async fn wrong_methods_are_told_which_ones_work(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let event = stack.event(queue(600, 100), chrono::Utc::now()).await;
    let cases = [
        ("GET", format!("/api/v1/events/{event}/queue/join"), "POST"),
        ("DELETE", format!("/api/v1/events/{event}/queue/status"), "GET"),
        ("POST", "/.well-known/jwks.json".to_owned(), "GET"),
        ("POST", "/events".to_owned(), "GET, HEAD"),
        ("PUT", format!("/api/v1/events/{event}"), "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = client().request(method.clone(), stack.edge.url(&path)).send().await.unwrap();
        assert_eq!(answer.status(), 405, "{method} {path}");
        assert_eq!(answer.headers()["allow"], allow, "{method} {path}");
        // A problem in JSON for the API, a page for browsers' paths.
        if path.starts_with("/api/") || path.starts_with("/.well-known/") {
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
        } else {
            assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        }
    }
}

async fn payment_webhooks_arrive_byte_for_byte(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let url = stack.edge.url("/webhooks/payments/sandbox");
    // Spacing a re-serialization would change: only the exact bytes verify.
    let body =
        br#"{ "id": "evt_edge_1",  "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}} }"#;
    let signature = sign(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), body);
    let send = |body: &'static [u8]| {
        client()
            .post(&url)
            .header("content-type", "application/json")
            .header("stripe-signature", &signature)
            .body(body)
            .send()
    };
    let delivered = send(body).await.unwrap();
    assert_eq!(delivered.status(), 200);
    assert_eq!(delivered.json::<serde_json::Value>().await.unwrap()["received"], true);
    let tampered = send(br#"{"id":"evt_edge_1","type":"payment_intent.succeeded"}"#).await.unwrap();
    assert_eq!(tampered.status(), 400);
    assert_eq!(tampered.json::<serde_json::Value>().await.unwrap()["error"], "signature_invalid");
}

async fn apps_get_buyer_sessions_and_the_api_description(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let session = client().post(stack.edge.url("/api/v1/buyer-sessions")).send().await.unwrap();
    assert_eq!(session.status(), 201);
    assert!(session.headers().contains_key("set-cookie"));
    assert!(session.json::<serde_json::Value>().await.unwrap()["buyer_token"].is_string());
    let openapi = client().get(stack.edge.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(openapi.status(), 200);
    assert!(openapi.json::<serde_json::Value>().await.unwrap()["paths"].is_object());
}

async fn the_origins_private_paths_stay_private(runtime: EdgeRuntime) {
    let stack = Stack::start(runtime).await;
    let event = stack.event(queue(600, 100), chrono::Utc::now()).await;
    let private = [
        ("GET", "/metrics".to_owned()),
        ("GET", "/health/ready".to_owned()),
        ("GET", "/health/live".to_owned()),
        ("GET", format!("/api/v1/events/{event}/waiting-room")),
        ("DELETE", format!("/api/v1/events/{event}/access")),
        ("GET", "/webhooks/payments".to_owned()),
        ("GET", "/api/v1/organizer".to_owned()),
        ("GET", "/api/v1/tickets/STM-TICKET".to_owned()),
    ];
    for (method, path) in private {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = client().request(method, stack.edge.url(&path)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        // The edge's own answer, not the origin's fallback passed on.
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_ne!(body["message"], "no such endpoint", "{path} reached the origin");
    }
}

on_every_edge!(
    the_organizer_api_passes_through_with_its_credentials,
    payment_webhooks_arrive_byte_for_byte,
    apps_get_buyer_sessions_and_the_api_description,
    the_origins_private_paths_stay_private,
    wrong_methods_are_told_which_ones_work,
);
