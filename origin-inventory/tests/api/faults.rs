//! Faults the origin rides out: connections dropped under it, a pool of
//! one, and the outbox through SIGKILL and SIGTERM of a real origin process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use origin_inventory::error::ApiError;
use origin_inventory::outbox::{LANES, Notifier, deliver_due};
use origin_inventory::payments::SandboxFaults;
use origin_inventory::test_support::{OriginOptions, spawn_origin_with_options};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::checkout::card_for;
use crate::checkout::held;
use crate::helpers::{TEST_PUBLIC_URL, TEST_TICKET_SECRET, spawn_app, spawn_app_with};

/// A Postgres cluster of the test's own, which it stops and starts.
struct PrivatePostgres {
    bin: PathBuf,
    home: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = std::env::var("STAMPEDE_PG_BIN_DIR")
            .expect("STAMPEDE_PG_BIN_DIR is not set: run `cargo xtask test`");
        let home = std::env::temp_dir().join(format!("stampede-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if root {
            // PostgreSQL refuses to run as root; the `postgres` user owns the cluster.
            assert!(Command::new("chown").args(["postgres:postgres"]).arg(&home).status().unwrap().success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Self { bin: PathBuf::from(bin), home, port };
        let data = cluster.home.join("data");
        let initdb = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "stampede", "--auth=trust", "--no-locale", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        cluster.resume();
        cluster
    }

    fn command(&self, program: &str) -> Command {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            command
        } else {
            Command::new(self.bin.join(program))
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.home.join("data"))
            .arg("-l")
            .arg(self.home.join("log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off",
            self.port
        );
        self.pg_ctl(&["-o", &options, "-w", "-t", "60", "start"]);
    }

    /// A fast shutdown: sessions are ended, as in a restart.
    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn admin_url(&self) -> String {
        format!("postgres://stampede@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.home.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

#[tokio::test]
async fn a_postgres_restart_mid_sale_is_503s_then_business_as_usual() {
    let postgres = PrivatePostgres::start();
    let app =
        spawn_app_with(OriginOptions { admin_url: Some(postgres.admin_url()), ..OriginOptions::default() })
            .await;
    let event = app.on_sale_event(json!({})).await;
    let event = event["id"].as_str().unwrap().to_owned();
    let section = app.a_section_of(&event).await;
    let (status, hold) = app
        .hold(
            "ada",
            &event,
            json!({"client_reservation_id": Uuid::new_v4(), "quantity": 1, "section_id": section}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let seatmap = format!("/api/v1/events/{event}/seatmap");

    postgres.stop();
    let client = reqwest::Client::new();
    for path in [seatmap.as_str(), "/health/ready"] {
        let started = Instant::now();
        let answer = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 503, "{path}");
        assert!(answer.headers().contains_key("retry-after"), "{path}");
        let code = answer.json::<serde_json::Value>().await.unwrap()["error"].clone();
        assert!(code == "database_unavailable" || code == "overloaded", "{path}: {code}");
        // The pool's acquire timeout (5 s) bounds the wait.
        assert!(started.elapsed() < Duration::from_secs(8), "{path} took {:?}", started.elapsed());
    }

    postgres.resume();
    let back = Instant::now();
    while app.get(&seatmap).await.0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(15), "not serving again after Postgres returned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("serving {:?} after Postgres returned", back.elapsed());
    // The hold made before the restart is still there, and sells.
    let (status, order) =
        app.commit("ada", &hold, &Uuid::new_v4().to_string(), card_for("ada@example.com")).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(app.get("/health/ready").await.0, 200);
}

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

/// The live seat-map reader has its own connection: a request pool of
/// one still serves requests while the journal is read.
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
    // The reader connects in the background: wait for it, then serve again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let readers: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
        )
        .bind(origin_inventory::live::READER)
        .fetch_one(&origin.db)
        .await
        .unwrap();
        if readers == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the seat-change reader never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = client.get(format!("{}/api/v1/events", origin.base)).send().await.unwrap();
    assert_eq!(events.status(), 200, "the pool's one connection still serves requests");
}

// ---- the outbox through crashes and stops -------------------------------

/// One of the workspace's binaries, as `cargo xtask test` built them.
fn binary(name: &str) -> PathBuf {
    let bin = std::env::var("STAMPEDE_BIN_DIR").expect("STAMPEDE_BIN_DIR is not set: run `cargo xtask test`");
    Path::new(&bin).join(name)
}

/// An origin process of its own, on the test's database, delivering
/// `lanes` notifications at once to `smtp_url`.
fn origin_process_on(database_url: &str, ledger_url: &str, smtp_url: &str, lanes: usize) -> OriginProcess {
    OriginProcess::spawn(&mut origin_command_on(database_url, ledger_url, smtp_url, lanes))
}

/// [`origin_process_on`]'s command, for a test to set more.
fn origin_command_on(database_url: &str, ledger_url: &str, smtp_url: &str, lanes: usize) -> Command {
    let mut command = Command::new(binary("origin-inventory"));
    command
        .env("DATABASE_URL", database_url)
        .env("STAMPEDE_SANDBOX_DATABASE_URL", ledger_url)
        .env("STAMPEDE_ORIGIN_LISTEN", "127.0.0.1:0")
        .env("STAMPEDE_SMTP_URL", smtp_url)
        .env("STAMPEDE_TICKET_SECRET", std::str::from_utf8(TEST_TICKET_SECRET).unwrap())
        .env("STAMPEDE_OUTBOX_LEASE_SECONDS", "21")
        .env("STAMPEDE_OUTBOX_LANES", lanes.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// Backends of the test's database waiting for a lock.
async fn waiting_for_a_lock(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// The outbox does not wait for the requests' connections: with every one
/// of them taken (a pool of one, its connection stuck behind a lock, as
/// a sale can keep a pool busy), confirmations still go out.
#[tokio::test]
async fn the_outbox_delivers_while_every_request_connection_is_taken() {
    const MESSAGES: i64 = 20;
    let mut smtp = PrivateSmtp::new();
    smtp.start();
    let origin = spawn_origin_with_options(OriginOptions::default()).await;
    // The sweeper, on the requests' pool, takes its only connection and
    // waits behind this lock; the outbox reads and writes no reservation.
    let mut lock = origin.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE reservations IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let mut process = OriginProcess::spawn(
        origin_command_on(&origin.database_url, &origin.ledger_url, &smtp.url(), 4)
            .env("STAMPEDE_DB_POOL_SIZE", "1")
            .env("STAMPEDE_SWEEP_INTERVAL_MS", "50"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting_for_a_lock(&origin.db).await == 0 {
        assert!(Instant::now() < deadline, "the sweeper never took the pool's connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let tag = format!("P{}", &Uuid::new_v4().simple().to_string()[..10]);
    sqlx::query(
        "INSERT INTO outbox (kind, payload)
         SELECT 'email.order_confirmed',
                jsonb_build_object('to', 'buyer' || n || '@example.com', 'name', 'Ada', 'order_number', $1 || '-' || n)
         FROM generate_series(1, $2) AS n",
    )
    .bind(&tag)
    .bind(MESSAGES)
    .execute(&origin.db)
    .await
    .unwrap();
    while undelivered(&origin.db).await > 0 {
        assert!(
            Instant::now() < deadline,
            "{} messages left while the request pool was taken",
            undelivered(&origin.db).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting_for_a_lock(&origin.db).await > 0, "the request pool was taken throughout");
    assert_eq!(copies(&smtp.maildir, &tag).len(), MESSAGES as usize);

    lock.rollback().await.unwrap();
    assert!(signal(&mut process, "TERM").success());
}

/// An origin process of a test, killed when the test ends, passed or
/// failed: one left running by a failed assertion kept the test's output
/// open, and the run hung instead of failing.
struct OriginProcess(Child);

impl OriginProcess {
    fn spawn(command: &mut Command) -> Self {
        Self(command.spawn().expect("the origin binary runs"))
    }
}

impl Drop for OriginProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

async fn delivered(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits until the outbox has recorded `more` messages sent: read from the
/// database, which costs the same however much mail has piled up.
async fn wait_for_more_delivered(db: &PgPool, more: i64) {
    let count = delivered(db).await + more;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered(db).await < count {
        assert!(Instant::now() < deadline, "only {} of {count} messages delivered", delivered(db).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(origin: &mut OriginProcess, name: &str) -> std::process::ExitStatus {
    Command::new("kill").args(["-s", name, &origin.0.id().to_string()]).status().unwrap();
    origin.0.wait().unwrap()
}

#[tokio::test]
async fn the_outbox_sends_each_message_once_through_sigkill_and_sigterm() {
    outbox_through_sigkill_and_sigterm(1).await;
}

#[tokio::test]
async fn concurrent_lanes_send_again_at_most_one_message_each_after_a_sigkill() {
    // The bound is per lane, whatever their number: sixteen, fewer than
    // the default, keep the duplicates allowed as few as ever.
    outbox_through_sigkill_and_sigterm(16).await;
}

/// A backlog delivered by three origins in turn: the first killed, the
/// second stopped, the third finishing. Only the kill may send messages
/// twice: at most the one in hand on each of the `lanes`.
async fn outbox_through_sigkill_and_sigterm(lanes: usize) {
    // Enough that sixteen lanes are still busy when the signals come
    // (they send a few thousand a second on a quiet machine).
    const MESSAGES: usize = 3000;
    // A mail server of its own: the backlog stays out of the other tests' maildir.
    let mut smtp = PrivateSmtp::new();
    smtp.start();
    let maildir = smtp.maildir.as_path();
    let origin = spawn_origin_with_options(OriginOptions::default()).await;
    let origin_process = || origin_process_on(&origin.database_url, &origin.ledger_url, &smtp.url(), lanes);
    let tag = format!("T{}", &Uuid::new_v4().simple().to_string()[..10]);
    sqlx::query(
        "INSERT INTO outbox (kind, payload)
         SELECT 'email.order_confirmed',
                jsonb_build_object('to', 'buyer' || n || '@example.com', 'name', 'Ada', 'order_number', $1 || '-' || n)
         FROM generate_series(0, $2 - 1) AS n",
    )
    .bind(&tag)
    .bind(MESSAGES as i64)
    .execute(&origin.db)
    .await
    .unwrap();

    // Killed outright mid-backlog: at most the messages between sending
    // and recording go out twice, one per lane.
    let mut first = origin_process();
    wait_for_more_delivered(&origin.db, 40).await;
    signal(&mut first, "KILL");
    assert!(undelivered(&origin.db).await > 0, "the kill came while a backlog was left");

    // Stopped politely mid-backlog: it finishes the message in hand,
    // records it, and hands the rest back.
    let mut second = origin_process();
    wait_for_more_delivered(&origin.db, 80).await;
    let stopped = signal(&mut second, "TERM");
    assert!(stopped.success(), "a SIGTERM stop exits cleanly: {stopped}");
    assert!(undelivered(&origin.db).await > 0, "the stop came while a backlog was left");

    let mut third = origin_process();
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
    assert!(twice.len() <= lanes, "only the kill may send one message per lane twice: {twice:?}");
    assert!(ours.len() >= twice.len(), "the checker reports {ours:?}, the maildir holds {twice:?}");
}

/// A mail server of the test's own (`smtp-sink`, as `cargo xtask test`
/// runs it).
struct PrivateSmtp {
    port: u16,
    maildir: PathBuf,
    child: Option<Child>,
}

impl PrivateSmtp {
    fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let maildir = std::env::temp_dir().join(format!("stampede-smtp-{}", Uuid::new_v4().simple()));
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(folder)).unwrap();
        }
        Self { port, maildir, child: None }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new(binary("smtp-sink"))
            .arg(format!("127.0.0.1:{}", self.port))
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`cargo xtask test` builds smtp-sink");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateSmtp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

#[tokio::test]
async fn mail_waits_out_an_smtp_outage_and_is_sent_once_it_is_back() {
    let mut smtp = PrivateSmtp::new();
    let app = spawn_app().await;
    let number = format!("STM-OUTAGE-{}", Uuid::new_v4().simple());
    let payload = json!({"to": "ada@example.com", "name": "Ada", "order_number": number});
    sqlx::query("INSERT INTO outbox (kind, payload) VALUES ('email.order_confirmed', $1)")
        .bind(payload)
        .execute(&app.db)
        .await
        .unwrap();
    let notifier =
        Notifier::new(&smtp.url(), "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap();

    // The server is down: nothing is lost, the message waits with a backoff.
    assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), 0);
    let (attempts, waits): (i32, bool) =
        sqlx::query_as("SELECT attempts, next_attempt_at > now() FROM outbox")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((attempts, waits), (1, true));

    smtp.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliver_due(&app.db, &notifier).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the message was not retried once the server was back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(copies(&smtp.maildir, "STM-OUTAGE").get(&number), Some(&1));
    assert_eq!(undelivered(&app.db).await, 0);
}

// ---- two origins on one database -----------------------------------------

/// Origins are stateless and run as several instances: their sweepers,
/// reconcilers and outboxes share one database. Orders whose charge answer
/// was lost are left pending; two origin processes then reconcile and
/// deliver side by side. Each payment is settled once (one order, one
/// confirmation written), each email and webhook arrives once.
#[tokio::test]
async fn two_origins_on_one_database_settle_and_deliver_everything_once() {
    const ORDERS: usize = 24;
    let mut smtp = PrivateSmtp::new();
    smtp.start();
    let lost_answers = SandboxFaults { timeout_rate: 0.5, ..SandboxFaults::default() };
    let app = spawn_app_with(OriginOptions { faults: lost_answers, ..OriginOptions::default() }).await;
    let webhooks: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&webhooks);
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| async move {
            let id = headers["webhook-id"].to_str().unwrap().to_owned();
            sink.lock().unwrap().push(id);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let (status, hook) = app
        .organizer(
            &app.key,
            reqwest::Method::PUT,
            "/api/v1/organizer/webhook",
            Some(json!({"url": hook_url})),
        )
        .await;
    assert_eq!(status, 200, "{hook}");

    for n in 0..ORDERS {
        let buyer = format!("buyer{n}");
        let (_, hold) = held(&app, &buyer, 1).await;
        let (status, answer) =
            app.commit(&buyer, &hold, &Uuid::new_v4().to_string(), card_for("ada@example.com")).await;
        assert!(status == 200 || status == 503, "{status} {answer}");
    }
    // Long abandoned by their requests: the reconcilers' first pass takes them.
    let pending: i64 = sqlx::query_scalar(
        "WITH aged AS (UPDATE payments SET updated_at = now() - interval '1 hour' WHERE status = 'pending' RETURNING 1)
         SELECT count(*) FROM aged",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(pending > 0, "some charges lost their answer");

    let mut origins = [
        origin_process_on(&app.database_url, &app.ledger_url, &smtp.url(), LANES),
        origin_process_on(&app.database_url, &app.ledger_url, &smtp.url(), LANES),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (pending, undelivered): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM payments WHERE status = 'pending'),
                    (SELECT count(*) FROM outbox WHERE delivered_at IS NULL)",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if pending == 0 && undelivered == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} payments pending, {undelivered} messages undelivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for origin in &mut origins {
        assert!(signal(origin, "TERM").success());
    }

    let numbers: Vec<String> = sqlx::query_scalar("SELECT order_number FROM orders ORDER BY order_number")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(numbers.len(), ORDERS, "every payment became one order");
    let confirmations: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'order_number' FROM outbox WHERE kind = 'email.order_confirmed' ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(confirmations, numbers, "each order was settled, and announced, once");
    let mails = copies(&smtp.maildir, "STM");
    for number in &numbers {
        assert_eq!(mails.get(number), Some(&1), "{number}: {mails:?}");
    }
    let mut hooks = webhooks.lock().unwrap().clone();
    hooks.sort();
    hooks.dedup();
    assert_eq!(hooks.len(), webhooks.lock().unwrap().len(), "no webhook arrived twice");
    assert_eq!(hooks.len(), ORDERS, "one webhook per order");
    let report = origin_inventory::invariants::check(&app.db, &app.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!(report.violations(), 0, "{report}");
}
