//! The shared page cache: one origin request serves a crowd, organizer
//! changes show at once, and a failing origin still gets pages served; on
//! Workers, catalog data read from Postgres through Hyperdrive.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use origin_inventory::demo;
use support::{EdgeRuntime, Stack, client, get_json};
use uuid::Uuid;

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

/// What the catalog Worker's Hyperdrive binding points at.
enum Database {
    /// No binding: catalog data comes from the origin.
    None,
    /// The test's own database.
    Test,
    /// A database that does not exist. (Not a closed port: wrangler 4.86's
    /// local Hyperdrive proxy exits when it cannot connect.)
    Missing,
}

fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => format!("{scheme}://{user}:local@{host}"),
        _ => url.to_owned(),
    }
}

/// The stack with the edge talking to the origin through a counting proxy;
/// pages stay fresh for `cache_seconds`.
async fn stack(runtime: EdgeRuntime, cache_seconds: &str, database: Database) -> (Stack, Counter, Uuid) {
    // A Redis database of this file's own: list pages are shared by key.
    let stack = Stack::start_with(runtime, 2, &[]).await;
    let (proxy, counter) = counting_proxy(&stack.origin.base).await;
    let demo = demo::seed(&stack.origin.db, DEMO_KEY).await.unwrap();
    // Hyperdrive's local mode wants a password; the test cluster trusts
    // local connections and ignores it.
    let hyperdrive = match database {
        Database::None => None,
        Database::Test => Some(with_password(&stack.origin.database_url)),
        Database::Missing => {
            let (cluster, _) = stack.origin.database_url.rsplit_once('/').expect("a database URL");
            Some(with_password(&format!("{cluster}/no_such_database")))
        }
    };
    let stack = stack.with_edge(&proxy, &[("CATALOG_CACHE_SECONDS", cache_seconds)], hyperdrive.as_deref());
    (stack, counter, demo.on_sale_event)
}

async fn a_burst_of_a_thousand_page_views_costs_a_handful_of_origin_requests(runtime: EdgeRuntime) {
    let (stack, counter, event) = stack(runtime, "5", Database::None).await;
    let url = stack.edge.url(&format!("/events/{event}"));
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..1000)
        .map(|_| {
            let url = url.clone();
            async move { client().get(url).send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{:?}", statuses.iter().filter(|s| **s != 200).count());
    // One read fills the cache, then one refresh per freshness window
    // (5 s) that the burst spans, however long a busy machine makes it;
    // each may be doubled when waiters give up on a slow refresher (2 s)
    // and read the page themselves. What matters: a handful per window,
    // never one per view.
    let windows = started.elapsed().as_secs().div_ceil(5) as usize;
    let origin_requests = counter.requests.load(Ordering::SeqCst);
    println!("1,000 views of one page over {windows} window(s) cost {origin_requests} origin request(s)");
    assert!(origin_requests >= 1);
    assert!(origin_requests <= 2 * (windows + 1), "{origin_requests} origin requests in {windows} windows");
}

/// Warm instances keep pages in memory and trust the catalog version they
/// read for up to a second: a change shows within that.
async fn an_organizer_change_shows_within_a_second(runtime: EdgeRuntime) {
    let (stack, _, event) = stack(runtime, "60", Database::None).await;
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
    let changed = std::time::Instant::now();
    let after = loop {
        let answer = client().get(&url).send().await.unwrap();
        if answer.headers()["x-stampede-cache"] != "hit" {
            break answer;
        }
        assert!(changed.elapsed() < std::time::Duration::from_millis(1_500), "the change did not show");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(after.headers()["x-stampede-cache"], "miss");
    assert!(after.text().await.unwrap().contains("Aurora Skies — Extra Date"));
}

async fn a_failing_origin_still_gets_the_last_good_page_served(runtime: EdgeRuntime) {
    let (stack, counter, event) = stack(runtime, "1", Database::None).await;
    let url = stack.edge.url(&format!("/api/v1/events/{event}"));
    let good = client().get(&url).send().await.unwrap().text().await.unwrap();
    counter.down.store(true, Ordering::SeqCst);
    // Fresh copies are served as they are; once the page is stale, the
    // origin is asked again, fails, and the last good page is served.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let answer = loop {
        let answer = client().get(&url).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        if answer.headers()["x-stampede-cache"] != "hit" {
            break answer;
        }
        assert!(std::time::Instant::now() < deadline, "the page never went stale");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(answer.headers()["x-stampede-cache"], "stale-if-error");
    assert_eq!(answer.text().await.unwrap(), good);
    // A page never cached has nothing to fall back on.
    let never_cached = format!("/api/v1/events?q={}", Uuid::new_v4());
    let list = client().get(stack.edge.url(&never_cached)).send().await.unwrap();
    assert_eq!(list.status(), 502);
}

/// Whether the demo's on-sale event page is served through the edge.
async fn event_page_is_served(stack: &Stack, event: Uuid) {
    let page = client().get(stack.edge.url(&format!("/events/{event}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Aurora Skies"));
}

#[tokio::test]
async fn the_catalog_worker_reads_postgres_through_hyperdrive() {
    let (stack, counter, event) = stack(EdgeRuntime::Workerd, "60", Database::Test).await;
    event_page_is_served(&stack, event).await;
    let list = get_json(&stack.edge.url("/api/v1/events?category=comedy")).await;
    assert_eq!(list["data"][0]["title"], "Comedy Gala", "{list}");
    let path = format!("/api/v1/events/{event}");
    let direct = get_json(&format!("{}{path}", stack.origin.base)).await;
    assert_eq!(get_json(&stack.edge.url(&path)).await, direct, "the same JSON as the origin's API");
    assert_eq!(counter.requests.load(Ordering::SeqCst), 0, "no catalog read reached the origin");
}

#[tokio::test]
async fn without_its_database_the_catalog_worker_asks_the_origin() {
    let (stack, counter, event) = stack(EdgeRuntime::Workerd, "60", Database::Missing).await;
    event_page_is_served(&stack, event).await;
    assert_eq!(counter.requests.load(Ordering::SeqCst), 1);
}

on_every_edge!(
    a_burst_of_a_thousand_page_views_costs_a_handful_of_origin_requests,
    an_organizer_change_shows_within_a_second,
    a_failing_origin_still_gets_the_last_good_page_served,
);
