//! The whole stack for a test: a fresh origin database, an Upstash-REST
//! gateway in front of the test Redis, and the edge: the project's
//! `spin.toml` served by the edge host with the real `.wasm` components, or
//! its `wrangler.toml` under `wrangler dev` (workerd).

#![allow(dead_code)] // each test file uses a different part

pub mod browser;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use edge_host::testing::HostProcess;
use origin_inventory::test_support::{
    OriginOptions, TEST_ACCESS_ISSUER, TEST_ACCESS_KEYS, TestOrigin, spawn_origin_with_options,
};
use origin_inventory::{auth, events, venues};
use serde_json::{Value, json};
use upstash_gateway::Gateway;
use uuid::Uuid;
use wrangler_dev::Wrangler;

pub const UPSTASH_TOKEN: &str = "system-test-token";
pub const ORGANIZER_KEY: &str = "sk_system_test_organizer";

/// What runs the edge in a test: our Wasmtime host with `spin.toml`, or
/// workerd with the project's `wrangler.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeRuntime {
    Host,
    Workerd,
}

/// Runs each named `async fn(EdgeRuntime)` once on every edge runtime, as
/// the tests `host::name` and `workerd::name`.
#[macro_export]
macro_rules! on_every_edge {
    ($($name:ident),* $(,)?) => {
        mod host {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::support::EdgeRuntime::Host).await
            })*
        }
        mod workerd {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::support::EdgeRuntime::Workerd).await
            })*
        }
    };
}

pub enum Edge {
    Host(HostProcess),
    Workerd(Wrangler),
}

impl Edge {
    pub fn url(&self, path: &str) -> String {
        match self {
            Edge::Host(host) => host.url(path),
            Edge::Workerd(wrangler) => wrangler.url(path),
        }
    }
}

/// What an edge is pointed at; `vars` add or override configuration by
/// its Worker name (the host gets the matching Spin variables).
pub struct EdgeSetup<'a> {
    pub origin: &'a str,
    pub gateway: &'a str,
    pub vars: &'a [(&'a str, &'a str)],
    /// A Postgres URL for the catalog Worker's Hyperdrive binding.
    pub hyperdrive: Option<&'a str>,
}

pub struct Stack {
    pub origin: TestOrigin,
    pub gateway: String,
    pub edge: Edge,
    pub runtime: EdgeRuntime,
    pub organizer: Uuid,
}

/// A gateway on port 0 in front of Redis database `db` of the test server.
pub async fn gateway(db: u8) -> String {
    let redis = std::env::var("STAMPEDE_TEST_REDIS_URL")
        .expect("STAMPEDE_TEST_REDIS_URL is not set: run `cargo xtask test`");
    gateway_to(&format!("{}/{db}", redis.trim_end_matches('/'))).await
}

/// Redis database `db` of a test file, kept apart per runtime: both
/// variants of a test run at once and list pages are shared by key.
pub async fn gateway_for(runtime: EdgeRuntime, db: u8) -> String {
    gateway(if runtime == EdgeRuntime::Host { db } else { db + 5 }).await
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The edge on `runtime`, configured by the project's own `spin.toml` or
/// `wrangler.toml` with `setup`'s values.
pub fn edge(runtime: EdgeRuntime, setup: &EdgeSetup) -> Edge {
    let mut vars = vec![
        ("ORIGIN_URL", setup.origin),
        ("UPSTASH_REDIS_REST_URL", setup.gateway),
        ("UPSTASH_REDIS_REST_TOKEN", UPSTASH_TOKEN),
        ("QUEUE_SIGNING_KEYS", TEST_ACCESS_KEYS),
        ("QUEUE_ISSUER", TEST_ACCESS_ISSUER),
        ("QUEUE_JOINS_PER_MINUTE_PER_IP", "1000000"),
    ];
    for (name, value) in setup.vars {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value));
    }
    match runtime {
        EdgeRuntime::Host => {
            assert!(setup.hyperdrive.is_none(), "Hyperdrive is a Workers binding");
            let bin = std::env::var("STAMPEDE_BIN_DIR")
                .expect("STAMPEDE_BIN_DIR is not set: run `cargo xtask test`");
            let host = Path::new(&bin).join("edge-host");
            // Spin's override of each variable: the same name as the Worker's.
            let spin: Vec<(String, &str)> =
                vars.iter().map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), *value)).collect();
            let spin: Vec<(&str, &str)> = spin.iter().map(|(name, value)| (name.as_str(), *value)).collect();
            // spin.toml names sources relative to itself: target/wasm32-wasip2/release/...
            let host = HostProcess::start(&host, &root().join("spin.toml"), &root().join("wit"), &[], &spin);
            Edge::Host(host.unwrap())
        }
        EdgeRuntime::Workerd => {
            let settings = wrangler_dev::Settings { vars: &vars, hyperdrive: setup.hyperdrive };
            Edge::Workerd(Wrangler::start(&root(), &settings).unwrap())
        }
    }
}

impl Stack {
    pub async fn start(runtime: EdgeRuntime) -> Self {
        Self::start_with(runtime, 0, &[]).await
    }

    pub async fn start_with(runtime: EdgeRuntime, redis_db: u8, vars: &[(&str, &str)]) -> Self {
        Self::start_on_gateway(runtime, gateway_for(runtime, redis_db).await, vars).await
    }

    /// The stack with the edge (and the origin's cache purges) on this gateway.
    pub async fn start_on_gateway(runtime: EdgeRuntime, gateway: String, vars: &[(&str, &str)]) -> Self {
        let edge_cache = Some((gateway.clone(), UPSTASH_TOKEN.to_owned()));
        let origin =
            spawn_origin_with_options(OriginOptions { edge_cache, ..OriginOptions::default() }).await;
        let edge =
            edge(runtime, &EdgeSetup { origin: &origin.base, gateway: &gateway, vars, hyperdrive: None });
        let organizer = auth::create_organizer(&origin.db, "System Tests", ORGANIZER_KEY).await.unwrap();
        Self { origin, gateway, edge, runtime, organizer }
    }

    /// The same stack with the edge reaching the origin at `origin_url`
    /// (a proxy in front of it, say) and these settings.
    pub fn with_edge(self, origin_url: &str, vars: &[(&str, &str)], hyperdrive: Option<&str>) -> Self {
        drop(self.edge);
        let setup = EdgeSetup { origin: origin_url, gateway: &self.gateway, vars, hyperdrive };
        let edge = edge(self.runtime, &setup);
        Self { edge, ..self }
    }

    /// A published event over a 200-place standing venue with these queue
    /// settings (JSON as the organizer API takes them) and sale start.
    pub async fn event(&self, queue: Value, sale_starts_at: DateTime<Utc>) -> Uuid {
        let hall = json!({
            "name": "Hall", "city": "Berlin", "timezone": "Europe/Berlin",
            "tiers": [{"name": "GA", "price_cents": 3000, "currency": "EUR"}],
            "sections": [{"name": "Floor", "tier": "GA", "capacity": 200}],
        });
        self.event_at(hall, queue, sale_starts_at).await
    }

    /// A published event "Queue Test" at a venue of `venue` (the organizer API's venue JSON).
    pub async fn event_at(&self, venue: Value, queue: Value, sale_starts_at: DateTime<Utc>) -> Uuid {
        let venue: venues::VenueSpec = serde_json::from_value(venue).unwrap();
        let venue = venues::create_venue(&self.origin.db, self.organizer, &venue).await.unwrap();
        let new: events::NewEvent = serde_json::from_value(json!({
            "venue_id": venue.id, "title": "Queue Test", "category": "music",
            "starts_at": "2031-01-01T19:00:00Z", "sale_starts_at": sale_starts_at, "queue": queue,
        }))
        .unwrap();
        let event = events::create_event(&self.origin.db, self.organizer, new).await.unwrap();
        events::change_status(&self.origin.db, self.organizer, event.id, events::StatusAction::Publish)
            .await
            .unwrap();
        event.id
    }

    /// Commands the gateway has served so far, by name.
    pub async fn redis_commands(&self) -> Value {
        reqwest::get(format!("{}/stats", self.gateway)).await.unwrap().json::<Value>().await.unwrap()["commands"]
            .clone()
    }
}

/// A visitor who joined `event`'s queue and was admitted at once, and
/// their access token.
pub async fn admitted(stack: &Stack, event: Uuid) -> (Visitor, String) {
    let mut visitor = Visitor::default();
    let joined =
        visitor.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/join")))).await;
    assert_eq!(joined.status, 200, "{}", joined.text);
    let token = joined.json()["access_token"].as_str().expect("admitted at once").to_owned();
    (visitor, token)
}

/// A `redis-server` of the test's own, which it may stop and start again
/// (on the same port, with its data: append-only file on).
pub struct RedisProcess {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl RedisProcess {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, dir: tempfile::tempdir().unwrap(), child: None };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed by `cargo xtask test`");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Shuts the server down (SIGTERM: it writes its data and exits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A gateway on port 0 in front of `redis_url`, on a thread and runtime of
/// its own as in production (its own process): a test's crowd of clients on
/// the test's runtime must not slow the gateway's answers down.
pub async fn gateway_to(redis_url: &str) -> String {
    let (ready, address) = tokio::sync::oneshot::channel();
    let redis_url = redis_url.to_owned();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let gateway = Gateway::connect(&redis_url, UPSTASH_TOKEN).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready.send(format!("http://{}", listener.local_addr().unwrap())).unwrap();
            axum::serve(listener, gateway.router()).await.unwrap();
        });
    });
    address.await.expect("the gateway started")
}

/// Queue settings with the given rates, the queue on.
pub fn queue(per_minute: u32, max_active: u32) -> Value {
    json!({"enabled": true, "new_users_per_minute": per_minute, "total_active_users": max_active,
           "session_duration_seconds": 600})
}

/// A browser-like visitor: keeps the cookies the edge sets.
#[derive(Clone, Default)]
pub struct Visitor {
    pub cookies: Vec<(String, String)>,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }
}

impl Visitor {
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookie = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookie.is_empty() { request } else { request.header("cookie", cookie) };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let (pair, _) = set.to_str().unwrap().split_once(';').unwrap_or((set.to_str().unwrap(), ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        Answer { status, headers, text: response.text().await.unwrap() }
    }

    pub fn cookie(&self, prefix: &str) -> Option<&str> {
        self.cookies.iter().find(|(n, _)| n.starts_with(prefix)).map(|(_, v)| v.as_str())
    }
}

/// The JSON body at `url`.
pub async fn get_json(url: &str) -> Value {
    client().get(url).send().await.unwrap().json().await.unwrap()
}

/// A client that never follows redirects, so tests see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
