//! The whole stack for a test: a fresh origin database, an Upstash-REST
//! gateway in front of the test Redis, and the project's `spin.toml` served
//! by the edge host with the real `.wasm` components.

#![allow(dead_code)] // each test file uses a different part

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

pub const UPSTASH_TOKEN: &str = "system-test-token";
pub const ORGANIZER_KEY: &str = "sk_system_test_organizer";

pub struct Stack {
    pub origin: TestOrigin,
    pub gateway: String,
    pub edge: HostProcess,
    pub organizer: Uuid,
}

/// A gateway on port 0 in front of Redis database `db` of the test server.
pub async fn gateway(db: u8) -> String {
    let redis = std::env::var("STAMPEDE_TEST_REDIS_URL")
        .expect("STAMPEDE_TEST_REDIS_URL is not set: run `cargo xtask test`");
    let gateway =
        Gateway::connect(&format!("{}/{db}", redis.trim_end_matches('/')), UPSTASH_TOKEN).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway.router()).await });
    base
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The project's own `spin.toml`, pointed at `origin` and `gateway`;
/// `env` adds or overrides `SPIN_VARIABLE_*` values.
pub fn edge(origin: &str, gateway: &str, env: &[(&str, &str)]) -> HostProcess {
    let bin = std::env::var("STAMPEDE_BIN_DIR").expect("STAMPEDE_BIN_DIR is not set: run `cargo xtask test`");
    let host = Path::new(&bin).join("edge-host");
    let mut vars = vec![
        ("SPIN_VARIABLE_ORIGIN_URL", origin),
        ("SPIN_VARIABLE_UPSTASH_URL", gateway),
        ("SPIN_VARIABLE_UPSTASH_TOKEN", UPSTASH_TOKEN),
        ("SPIN_VARIABLE_QUEUE_SIGNING_KEYS", TEST_ACCESS_KEYS),
        ("SPIN_VARIABLE_QUEUE_ISSUER", TEST_ACCESS_ISSUER),
        ("SPIN_VARIABLE_QUEUE_JOINS_PER_MINUTE_PER_IP", "1000000"),
    ];
    vars.extend_from_slice(env);
    // spin.toml names sources relative to itself: target/wasm32-wasip2/release/...
    HostProcess::start(&host, &root().join("spin.toml"), &root().join("wit"), &[], &vars).unwrap()
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(0, &[]).await
    }

    pub async fn start_with(redis_db: u8, env: &[(&str, &str)]) -> Self {
        let gateway = gateway(redis_db).await;
        let edge_cache = Some((gateway.clone(), UPSTASH_TOKEN.to_owned()));
        let origin =
            spawn_origin_with_options(OriginOptions { edge_cache, ..OriginOptions::default() }).await;
        let edge = edge(&origin.base, &gateway, env);
        let organizer = auth::create_organizer(&origin.db, "System Tests", ORGANIZER_KEY).await.unwrap();
        Self { origin, gateway, edge, organizer }
    }

    /// The same stack with the edge reaching the origin at `origin_url`
    /// (a proxy in front of it, say).
    pub fn with_edge_origin(self, origin_url: &str, env: &[(&str, &str)]) -> Self {
        let edge = edge(origin_url, &self.gateway, env);
        Self { edge, ..self }
    }

    /// A published event over a 200-place standing venue with these queue
    /// settings (JSON as the organizer API takes them) and sale start.
    pub async fn event(&self, queue: Value, sale_starts_at: DateTime<Utc>) -> Uuid {
        let venue: venues::VenueSpec = serde_json::from_value(json!({
            "name": "Hall", "city": "Berlin", "timezone": "Europe/Berlin",
            "tiers": [{"name": "GA", "price_cents": 3000, "currency": "EUR"}],
            "sections": [{"name": "Floor", "tier": "GA", "capacity": 200}],
        }))
        .unwrap();
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

/// A client that never follows redirects, so tests see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
