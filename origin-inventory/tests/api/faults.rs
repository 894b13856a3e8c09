//! Faults the origin rides out: connections dropped under it, a pool of
//! one, and the outbox through SIGKILL and SIGTERM of a real origin process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use origin_inventory::error::ApiError;
use origin_inventory::outbox::{Notifier, deliver_due};
use origin_inventory::test_support::{OriginOptions, TestOrigin, spawn_origin_with_options};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::checkout::card_for;
use crate::helpers::{spawn_app, spawn_app_with};

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
    // The listener connects in the background: wait for it, then serve again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listeners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&origin.db)
        .await
        .unwrap();
        if listeners == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the seat-change listener never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = client.get(format!("{}/api/v1/events", origin.base)).send().await.unwrap();
    assert_eq!(events.status(), 200, "the pool's one connection still serves requests");
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

/// A mail server of the test's own (aiosmtpd, as `cargo xtask test` runs it).
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
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd is installed by `cargo xtask test`");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
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
    let notifier = Notifier::new(&smtp.url(), "Stampede <tickets@stampede.local>").unwrap();

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
