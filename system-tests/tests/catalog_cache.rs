//! The shared page cache: one origin request serves a crowd, organizer
//! changes show at once, and a failing origin still gets pages served.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use origin_inventory::demo;
use support::{Stack, client};

/// The demo organizer, who owns the demo events.
const DEMO_KEY: &str = "sk_system_demo";

/// A reverse proxy in front of the origin that counts requests and can
/// play dead (503 for everything).
#[derive(Clone)]
struct Counter {
    origin: String,
    requests: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

async fn proxy(State(counter): State<Counter>, request: Request) -> Response {
    counter.requests.fetch_add(1, Ordering::SeqCst);
    if counter.down.load(Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let target = format!("{}{}", counter.origin, request.uri().path_and_query().map_or("/", |p| p.as_str()));
    let answer = reqwest::get(target).await.unwrap();
    let status = answer.status().as_u16();
    let body = answer.bytes().await.unwrap();
    (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
        .into_response()
}

async fn counting_proxy(origin: &str) -> (String, Counter) {
    let counter = Counter { origin: origin.to_owned(), requests: Arc::default(), down: Arc::default() };
    let app = axum::Router::new().fallback(proxy).with_state(counter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, counter)
}

/// The stack with the edge talking to the origin through a counting proxy;
/// pages stay fresh for `cache_seconds`.
async fn stack(cache_seconds: &str) -> (Stack, Counter, uuid::Uuid) {
    // A Redis database of this file's own: list pages are shared by key.
    let stack = Stack::start_with(2, &[]).await;
    let (proxy, counter) = counting_proxy(&stack.origin.base).await;
    let demo = demo::seed(&stack.origin.db, DEMO_KEY).await.unwrap();
    let stack = stack.with_edge_origin(&proxy, &[("SPIN_VARIABLE_CATALOG_CACHE_SECONDS", cache_seconds)]);
    (stack, counter, demo.on_sale_event)
}

#[tokio::test]
async fn a_burst_of_a_thousand_page_views_costs_a_handful_of_origin_requests() {
    let (stack, counter, event) = stack("5").await;
    let url = stack.edge.url(&format!("/events/{event}"));
    let statuses: Vec<u16> = futures::stream::iter(0..1000)
        .map(|_| {
            let url = url.clone();
            async move { client().get(url).send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{:?}", statuses.iter().filter(|s| **s != 200).count());
    let origin_requests = counter.requests.load(Ordering::SeqCst);
    println!("1,000 views of one page cost {origin_requests} origin request(s)");
    assert!(origin_requests <= 5, "1,000 views cost {origin_requests} origin requests");
}

#[tokio::test]
async fn an_organizer_change_shows_on_the_next_request() {
    let (stack, _, event) = stack("60").await;
    let url = stack.edge.url(&format!("/events/{event}"));
    let first = client().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(first.contains("Aurora Skies"));
    let second = client().get(&url).send().await.unwrap();
    assert_eq!(second.headers()["x-stampede-cache"], "hit");

    let patch = client()
        .patch(format!("{}/api/v1/organizer/events/{event}", stack.origin.base))
        .bearer_auth(DEMO_KEY)
        .json(&serde_json::json!({"title": "Aurora Skies — Extra Date"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let after = client().get(&url).send().await.unwrap();
    assert_eq!(after.headers()["x-stampede-cache"], "miss");
    assert!(after.text().await.unwrap().contains("Aurora Skies — Extra Date"));
}

#[tokio::test]
async fn a_failing_origin_still_gets_the_last_good_page_served() {
    let (stack, counter, event) = stack("1").await;
    let url = stack.edge.url(&format!("/api/v1/events/{event}"));
    let good = client().get(&url).send().await.unwrap().text().await.unwrap();
    counter.down.store(true, Ordering::SeqCst);
    // Past the freshness window, the origin is asked again and fails.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let answer = client().get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-stampede-cache"], "stale-if-error");
    assert_eq!(answer.text().await.unwrap(), good);
    // A page never cached has nothing to fall back on.
    let never_cached = format!("/api/v1/events?q={}", uuid::Uuid::new_v4());
    let list = client().get(stack.edge.url(&never_cached)).send().await.unwrap();
    assert_eq!(list.status(), 502);
}
