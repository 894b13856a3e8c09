//! The catalog, on every edge runtime, in front of a real origin.

mod support;

use origin_inventory::demo;
use support::{EdgeRuntime, Stack};

/// A stack with the demo data loaded and its page cache in a Redis
/// database of its test's own (`test`: the test's place in this file, 0 to
/// 3; each runtime has its own databases too): seeding the demo bumps the
/// catalog version, which would otherwise turn another test's cached pages
/// stale between two of its requests.
async fn demo_stack(runtime: EdgeRuntime, test: u8) -> (Stack, demo::Demo) {
    let stack = Stack::start_with(runtime, 1 + test, &[]).await;
    let demo = demo::seed(&stack.origin.db, "sk_system_test").await.unwrap();
    (stack, demo)
}

async fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

async fn the_demo_catalog_is_served_by_the_wasm_component(runtime: EdgeRuntime) {
    let (stack, demo) = demo_stack(runtime, 0).await;
    let edge = &stack.edge;

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

async fn pages_carry_validators_and_a_shared_cache_policy(runtime: EdgeRuntime) {
    let (stack, _) = demo_stack(runtime, 1).await;
    let edge = &stack.edge;
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

async fn bad_parameters_get_a_4xx_from_the_edge(runtime: EdgeRuntime) {
    let (stack, _) = demo_stack(runtime, 2).await;
    let edge = &stack.edge;
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

async fn a_stopped_origin_gives_a_502_not_a_crash(runtime: EdgeRuntime) {
    let (stack, _) = demo_stack(runtime, 3).await;
    let stack = stack.with_edge("http://127.0.0.1:9", &[], None);
    let edge = &stack.edge;
    // A query no other test asks, so no cached copy can stand in.
    let (status, body, _) = get(&edge.url(&format!("/api/v1/events?q={}", uuid::Uuid::new_v4()))).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("origin_unavailable"));
}

on_every_edge!(
    the_demo_catalog_is_served_by_the_wasm_component,
    pages_carry_validators_and_a_shared_cache_policy,
    bad_parameters_get_a_4xx_from_the_edge,
    a_stopped_origin_gives_a_502_not_a_crash,
);
