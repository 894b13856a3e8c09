//! Faults the origin rides out: connections dropped under it, a pool of
//! one, and the outbox through SIGKILL and SIGTERM of a real origin process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use origin_inventory::error::ApiError;
use origin_inventory::test_support::{OriginOptions, TestOrigin, spawn_origin_with_options};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_connection_lost_mid_query_is_a_503_the_client_may_retry() {
    let app = spawn_app().await;
    let mut connection = app.db.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *connection).await.unwrap();
    let query = sqlx::query("SELECT pg_sleep(30)").execute(&mut *connection);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&app.db).await.unwrap();
    };
    let (lost, ()) = tokio::join!(query, kill);
    let error = ApiError::from(lost.unwrap_err());
    assert_eq!((error.status().as_u16(), error.code()), (503, "database_unavailable"));
    assert_eq!(error.into_response().headers()["retry-after"], "1");
}

#[tokio::test]
async fn the_origin_serves_on_after_its_connections_are_dropped() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/v1/events").await.0, 200);
    // What a Postgres restart does to every open connection.
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(dropped >= 1, "the origin's own connections were open");
    for _ in 0..5 {
        let (status, body) = app.get("/api/v1/events").await;
        assert!(status == 200 || status == 503, "{status} {body}");
        if status == 503 {
            assert_eq!(body["error"], "database_unavailable");
        }
    }
    assert_eq!(app.get("/health/ready").await.0, 200);
}

/// The live seat-map listener has its own connection: a request pool of
/// one still serves requests while a page listens.
#[tokio::test]
async fn a_pool_of_one_is_ready_and_serves_beside_a_live_seat_map() {
    let origin =
        spawn_origin_with_options(OriginOptions { pool_size: Some(1), ..OriginOptions::default() }).await;
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/health/ready", origin.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    for _ in 0..3 {
        let events = client.get(format!("{}/api/v1/events", origin.base)).send().await.unwrap();
        assert_eq!(events.status(), 200);
    }
    let listeners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&origin.db)
    .await
    .unwrap();
    assert_eq!(listeners, 1, "the listener is connected, outside the pool");
}

// ---- the outbox through crashes and stops -------------------------------

/// An origin process of its own, on the test's database.
fn origin_process(origin: &TestOrigin) -> Child {
    let bin = std::env::var("STAMPEDE_BIN_DIR").expect("STAMPEDE_BIN_DIR is not set: run `cargo xtask test`");
    let smtp = std::env::var("STAMPEDE_TEST_SMTP_URL").expect("STAMPEDE_TEST_SMTP_URL is not set");
    Command::new(Path::new(&bin).join("origin-inventory"))
        .env("DATABASE_URL", &origin.database_url)
        .env("STAMPEDE_ORIGIN_LISTEN", "127.0.0.1:0")
        .env("STAMPEDE_SMTP_URL", smtp)
        .env("STAMPEDE_OUTBOX_LEASE_SECONDS", "21")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the origin binary runs")
}

/// How many copies of each order's confirmation the mail server holds.
fn copies(maildir: &Path, tag: &str) -> BTreeMap<String, usize> {
    let mut copies = BTreeMap::new();
    for entry in std::fs::read_dir(maildir.join("new")).unwrap().flatten() {
        let Ok(mail) = std::fs::read_to_string(entry.path()) else { continue };
        if let Some(at) = mail.find(&format!("order {tag}-")) {
            let number: String = mail[at + 6..].chars().take_while(|c| !c.is_whitespace()).collect();
            *copies.entry(number).or_default() += 1;
        }
    }
    copies
}

async fn undelivered(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetch_one(db).await.unwrap()
}

/// Waits until the mail server holds at least `count` of the messages.
async fn wait_for_mail(maildir: &Path, tag: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while copies(maildir, tag).len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} mails arrived", copies(maildir, tag).len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &mut Child, name: &str) -> std::process::ExitStatus {
    Command::new("kill").args(["-s", name, &child.id().to_string()]).status().unwrap();
    child.wait().unwrap()
}

#[tokio::test]
async fn the_outbox_sends_each_message_once_through_sigkill_and_sigterm() {
    const MESSAGES: usize = 300;
    let maildir = std::env::var("STAMPEDE_TEST_MAILDIR").expect("STAMPEDE_TEST_MAILDIR is not set");
    let maildir = Path::new(&maildir);
    let origin = spawn_origin_with_options(OriginOptions::default()).await;
    let tag = format!("T{}", &Uuid::new_v4().simple().to_string()[..10]);
    for n in 0..MESSAGES {
        let payload = json!({"to": format!("buyer{n}@example.com"), "name": "Ada", "order_number": format!("{tag}-{n}")});
        sqlx::query("INSERT INTO outbox (kind, payload) VALUES ('email.order_confirmed', $1)")
            .bind(payload)
            .execute(&origin.db)
            .await
            .unwrap();
    }

    // Killed outright mid-backlog: at most the message between sending
    // and recording goes out twice.
    let mut first = origin_process(&origin);
    wait_for_mail(maildir, &tag, 40).await;
    signal(&mut first, "KILL");
    assert!(undelivered(&origin.db).await > 0, "the kill came while a backlog was left");

    // Stopped politely mid-backlog: it finishes the message in hand,
    // records it, and hands the rest back.
    let mut second = origin_process(&origin);
    wait_for_mail(maildir, &tag, 120).await;
    let stopped = signal(&mut second, "TERM");
    assert!(stopped.success(), "a SIGTERM stop exits cleanly: {stopped}");
    assert!(undelivered(&origin.db).await > 0, "the stop came while a backlog was left");

    let mut third = origin_process(&origin);
    let deadline = Instant::now() + Duration::from_secs(120);
    while undelivered(&origin.db).await > 0 {
        assert!(Instant::now() < deadline, "the backlog was not delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(signal(&mut third, "TERM").success());

    // The invariant checker sees the same, by Message-ID.
    let duplicates = origin_inventory::invariants::duplicate_deliveries(maildir).unwrap();
    let ours: Vec<_> = duplicates.violations.iter().filter(|v| v.starts_with('<')).collect();
    let copies = copies(maildir, &tag);
    assert_eq!(copies.len(), MESSAGES, "every message arrived");
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(copies.values().all(|n| *n <= 2), "{twice:?}");
    assert!(twice.len() <= 1, "only the kill may send one message twice: {twice:?}");
    assert!(ours.len() >= twice.len(), "the checker reports {ours:?}, the maildir holds {twice:?}");
}
