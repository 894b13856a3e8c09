//! An origin on port 0 over a fresh database, for tests (feature `test-support`).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::app::{Application, migrate, pool_options};
use crate::config::{ProviderSettings, Settings};
use crate::payments::SandboxFaults;

/// The ticket secret of test origins.
pub const TEST_TICKET_SECRET: &[u8] = b"test-ticket-secret";
/// The payment webhook secret of test origins.
pub const TEST_WEBHOOK_SECRET: &[u8] = b"whsec_test_webhooks";

/// The edge signing keys of tests (`kid:seed`), and their issuer; test
/// origins trust them.
pub const TEST_ACCESS_KEYS: &str = "test-1:c3RhbXBlZGUtdGVzdC1zaWduaW5nLWtleS0wMDAwMDA";
pub const TEST_ACCESS_ISSUER: &str = "stampede-edge-test";

/// The keyring an edge shares with test origins.
pub fn test_keyring() -> queue_tokens::Keyring {
    queue_tokens::Keyring::from_config(TEST_ACCESS_KEYS, TEST_ACCESS_ISSUER).expect("test keys")
}

/// A running origin and a pool on its database.
pub struct TestOrigin {
    pub base: String,
    pub db: PgPool,
    /// The test database, for clients other than the origin.
    pub database_url: String,
    /// The sandbox payment provider's ledger, in a database of its own as
    /// `cargo xtask up` keeps it.
    pub ledger: PgPool,
    pub ledger_url: String,
}

/// Creates a database with a random name on the cluster behind
/// `STAMPEDE_TEST_DATABASE_URL` (and one beside it for the sandbox's
/// ledger), migrates it, and serves it on port 0.
pub async fn spawn_origin() -> TestOrigin {
    spawn_origin_with(SandboxFaults::default()).await
}

/// The same, with a misbehaving sandbox payment provider.
pub async fn spawn_origin_with(faults: SandboxFaults) -> TestOrigin {
    spawn_origin_with_options(OriginOptions { faults, ..OriginOptions::default() }).await
}

/// What a test may change about its origin.
#[derive(Default)]
pub struct OriginOptions {
    pub faults: SandboxFaults,
    /// Upstash REST URL and token of the edge caches to purge on changes.
    pub edge_cache: Option<(String, String)>,
    /// The request pool's size (default 40).
    pub pool_size: Option<u32>,
    /// The cluster to create the test database on, instead of
    /// `STAMPEDE_TEST_DATABASE_URL`'s.
    pub admin_url: Option<String>,
}

pub async fn spawn_origin_with_options(options: OriginOptions) -> TestOrigin {
    let admin_url = options.admin_url.clone().unwrap_or_else(|| {
        std::env::var("STAMPEDE_TEST_DATABASE_URL")
            .expect("STAMPEDE_TEST_DATABASE_URL is not set: run the tests with `cargo xtask test`")
    });
    let name = format!("test_{}", Uuid::new_v4().simple());
    let ledger_name = format!("{name}_ledger");
    let admin = PgPoolOptions::new().max_connections(1).connect(&admin_url).await.expect("admin connection");
    for database in [&name, &ledger_name] {
        sqlx::query(&format!("CREATE DATABASE {database}")).execute(&admin).await.expect("create database");
    }
    admin.close().await;
    let cluster = admin_url.rsplit_once('/').expect("URL with a database").0;
    let (database_url, ledger_url) = (format!("{cluster}/{name}"), format!("{cluster}/{ledger_name}"));
    let pool_size = options.pool_size.unwrap_or(40);
    let db = pool_options(pool_size).connect(&database_url).await.expect("test database");
    migrate(&db).await.expect("migrations");

    let settings = Settings {
        database_url: database_url.clone().into(),
        listen: "127.0.0.1:0".parse().expect("address"),
        pool_size,
        request_timeout: Duration::from_secs(30),
        drain_delay: Duration::ZERO,
        provider: ProviderSettings::Sandbox {
            faults: options.faults,
            ledger_url: Some(ledger_url.clone().into()),
        },
        ticket_secret: String::from_utf8(TEST_TICKET_SECRET.to_vec()).expect("ASCII").into(),
        webhook_secret: String::from_utf8(TEST_WEBHOOK_SECRET.to_vec()).expect("ASCII").into(),
        buyer_session_secret: "test-buyer-session-secret".into(),
        sweep_interval: Duration::from_secs(3600),
        smtp_url: std::env::var("STAMPEDE_TEST_SMTP_URL")
            .unwrap_or_else(|_| "smtp://127.0.0.1:9".into())
            .into(),
        mail_from: "Stampede Tests <tests@stampede.local>".into(),
        public_url: crate::config::LOCAL_PUBLIC_URL.into(),
        outbox_lease: crate::outbox::LEASE,
        outbox_lanes: crate::outbox::LANES,
        access: Some(test_keyring().verifier().clone()),
        edge_cache: options.edge_cache.map(|(url, token)| (url, token.into())),
    };
    let app = Application::build(&settings, db.clone()).await.expect("origin");
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until(std::future::pending()));
    let ledger =
        crate::payments::open_ledger(settings.provider.sandbox_ledger_url(), &db).await.expect("ledger");
    TestOrigin { base, db, database_url, ledger, ledger_url }
}

/// A server-sent-events response, read event by event.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Sends `request` and checks that a stream of events comes back.
    pub async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = request.header("accept", "text/event-stream").send().await.expect("stream request");
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event as (name, data), skipping comments; `None` if none
    /// arrives within `wait` or the stream ends.
    pub async fn next(&mut self, wait: Duration) -> Option<(String, String)> {
        tokio::time::timeout(wait, self.next_or_end()).await.ok().flatten()
    }

    /// Panics unless the stream stays open and silent for `wait`: a stream
    /// that ended would say nothing too, and prove nothing.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        match tokio::time::timeout(wait, self.next_or_end()).await {
            Err(_) => {}
            Ok(Some(event)) => panic!("expected silence, heard {event:?}"),
            Ok(None) => panic!("the stream ended instead of staying open"),
        }
    }

    /// The next event; `None` once the stream has ended.
    async fn next_or_end(&mut self) -> Option<(String, String)> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start().to_owned())
                };
                if let (Some(name), Some(data)) = (field("event:"), field("data:")) {
                    return Some((name, data));
                }
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 events"));
        }
    }

    /// The data of the next `count` `seat` events ("<seat> <STATUS>"),
    /// sorted; panics if they do not come within 10 s.
    pub async fn seat_changes(&mut self, count: usize) -> Vec<String> {
        let mut changes = Vec::new();
        while changes.len() < count {
            match self.next(Duration::from_secs(10)).await {
                Some((name, data)) if name == "seat" => changes.push(data),
                Some(_) => {}
                None => panic!("only {changes:?} arrived within 10 s"),
            }
        }
        changes.sort();
        changes
    }
}
