//! The catalog component, served by the edge host, in front of a real origin.

mod support;

use edge_host::testing::HostProcess;
use origin_inventory::demo;
use origin_inventory::test_support::{TestOrigin, spawn_origin};

/// The edge with its page cache in a Redis database of this file's own.
async fn edge_for(origin: &TestOrigin) -> HostProcess {
    support::edge(&origin.base, &support::gateway(1).await, &[])
}

async fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

#[tokio::test]
async fn the_demo_catalog_is_served_by_the_wasm_component() {
    let origin = spawn_origin().await;
    let demo = demo::seed(&origin.db, "sk_system_test").await.unwrap();
    let edge = edge_for(&origin).await;

    let (status, html, headers) = get(&edge.url("/")).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(html.contains("Aurora Skies — Live in Berlin"));
    assert!(html.contains("Late Night Jazz Sessions"));
    assert!(!html.contains("Philharmonic"), "drafts stay hidden");

    let (status, page, _) = get(&edge.url(&format!("/events/{}", demo.on_sale_event))).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("href=\"/events/{}/checkout\"", demo.on_sale_event)));
    assert!(page.contains("Stampede Arena, Berlin"));

    let (status, json, _) = get(&edge.url("/api/v1/events?category=comedy")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["data"][0]["title"], "Comedy Gala");
}

#[tokio::test]
async fn pages_carry_validators_and_a_shared_cache_policy() {
    let origin = spawn_origin().await;
    demo::seed(&origin.db, "sk_system_test").await.unwrap();
    let edge = edge_for(&origin).await;
    for path in ["/events", "/api/v1/events?city=Berlin"] {
        let (status, _, headers) = get(&edge.url(path)).await;
        assert_eq!(status, 200);
        let cache_control = headers["cache-control"].to_str().unwrap();
        assert!(
            cache_control.contains("s-maxage=5") && cache_control.contains("stale-while-revalidate"),
            "{cache_control}"
        );
        let etag = headers["etag"].clone();
        let again = reqwest::Client::new()
            .get(edge.url(path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag);
        let stale = reqwest::Client::new()
            .get(edge.url(path))
            .header("if-none-match", "\"old\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }
    let (status, _, headers) = get(&edge.url("/events?page=0")).await;
    assert_eq!((status, headers["cache-control"].to_str().unwrap()), (400, "no-store"));
}

#[tokio::test]
async fn bad_parameters_get_a_4xx_from_the_edge() {
    let origin = spawn_origin().await;
    let edge = edge_for(&origin).await;
    for (path, status) in [
        ("/events?page=0", 400),
        ("/events?from=soon", 400),
        ("/api/v1/events?limit=5000", 400),
        ("/events/not-an-id", 404),
        ("/api/v1/events/00000000-0000-0000-0000-000000000000", 404),
    ] {
        let (got, body, _) = get(&edge.url(path)).await;
        assert_eq!(got, status, "{path}: {body}");
        if path.starts_with("/api/") {
            let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(problem["error"].is_string(), "{body}");
        }
    }
}

#[tokio::test]
async fn a_stopped_origin_gives_a_502_not_a_crash() {
    let origin = TestOrigin { base: "http://127.0.0.1:9".into(), db: spawn_origin().await.db };
    let edge = edge_for(&origin).await;
    // A query no other test asks, so no cached copy can stand in.
    let (status, body, _) = get(&edge.url(&format!("/api/v1/events?q={}", uuid::Uuid::new_v4()))).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("origin_unavailable"));
}
