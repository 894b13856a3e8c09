use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use mail_parser::MimeHeaders as _;
use origin_inventory::mailer::Mailer;
use origin_inventory::outbox::{BATCH, Claims, LANES, LEASE, Notifier, deliver_due, deliver_due_until};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use uuid::Uuid;

use crate::checkout::{card_for, held};
use crate::helpers::{TEST_PUBLIC_URL, TestApp, spawn_app};

/// The local SMTP server (`smtp-sink`) that `cargo xtask test` starts, and its maildir.
fn smtp() -> (String, PathBuf) {
    let url = std::env::var("STAMPEDE_TEST_SMTP_URL")
        .expect("STAMPEDE_TEST_SMTP_URL is not set: run `cargo xtask test`");
    let maildir = std::env::var("STAMPEDE_TEST_MAILDIR").expect("STAMPEDE_TEST_MAILDIR is not set");
    (url, PathBuf::from(maildir))
}

fn mail_containing(maildir: &Path, needle: &str) -> Option<String> {
    std::fs::read_dir(maildir.join("new"))
        .ok()?
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .find(|mail| mail.contains(needle))
}

async fn buy(app: &TestApp, email: &str) -> String {
    let (_, hold) = held(app, "ada", 2).await;
    let (status, order) = app.commit("ada", &hold, &Uuid::new_v4().to_string(), card_for(email)).await;
    assert_eq!(status, 200, "{order}");
    order["order_number"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_order_confirmation_reaches_a_real_smtp_server() {
    let (url, maildir) = smtp();
    let app = spawn_app().await;
    let email = format!("ada+{}@example.com", Uuid::new_v4().simple());
    let number = buy(&app, &email).await;
    let notifier = Notifier::new(&url, "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap();
    assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), 2, "the email and the (unconfigured) webhook");
    let mail = mail_containing(&maildir, &number).expect("the confirmation is in the maildir");
    assert!(mail.contains(&email), "{mail}");
    let parsed = mail_parser::MessageParser::default().parse(mail.as_bytes()).expect("a MIME message");
    assert_eq!(parsed.subject(), Some(format!("Your tickets for Hot Show: order {number}").as_str()));
    assert!(parsed.date().is_some(), "a Date header");
    // The absolute secret link, in both bodies, and what the order is for.
    let (secret,): (String,) = sqlx::query_as("SELECT secret FROM orders").fetch_one(&app.db).await.unwrap();
    let link = format!("{TEST_PUBLIC_URL}/orders/{number}/{secret}");
    let text = parsed.body_text(0).expect("a plain-text body");
    let html = parsed.body_html(0).expect("an HTML body");
    for body in [&text, &html] {
        assert!(body.contains(&link), "{body}");
        assert!(body.contains("Hot Show") && body.contains("Hall, Paris"), "{body}");
        assert!(body.contains("Sat 1 Jun 2030, 21:00 CEST"), "the start in the venue's time: {body}");
        assert!(body.contains("Main, row R0, seat 1"), "{body}");
    }
    // A QR code per ticket, inline and referenced from the HTML.
    let images: Vec<_> =
        parsed.attachments().filter(|a| a.content_type().is_some_and(|t| t.ctype() == "image")).collect();
    assert_eq!(images.len(), 2, "two tickets, two QR codes");
    for image in &images {
        assert!(image.contents().starts_with(b"\x89PNG"), "a PNG");
        let cid = image.content_id().expect("an inline image has a Content-ID");
        assert!(html.contains(&format!("cid:{cid}")), "the HTML shows {cid}");
    }
    let calendar = parsed
        .attachments()
        .find(|a| a.content_type().is_some_and(|t| t.subtype() == Some("calendar")))
        .expect("the show as a calendar entry");
    assert_eq!(calendar.attachment_name(), Some("show.ics"));
    let ics = String::from_utf8_lossy(calendar.contents()).replace("\r\n ", "");
    assert!(ics.contains("DTSTART:20300601T190000Z") && ics.contains("SUMMARY:Hot Show"), "{ics}");
    // A stable Message-ID from the outbox row lets a receiver drop the rare
    // duplicate (a crash between sending and recording).
    let (id, kind, payload): (i64, String, serde_json::Value) =
        sqlx::query_as("SELECT id, kind, payload FROM outbox WHERE kind = 'email.order_confirmed'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let key = origin_inventory::outbox::message_key(id, &kind, &payload);
    assert!(mail.contains(&format!("Message-ID: <{key}@stampede.local>")), "{mail}");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), 0, "delivered once");
}

/// Messages go one after another over a connection kept open (the server
/// sees them from one client port), as the outbox's lanes send them.
#[tokio::test]
async fn the_mailer_keeps_its_connection_open_between_messages() {
    let (url, maildir) = smtp();
    let mailer = Mailer::new(&url, 1, Duration::from_secs(10)).unwrap();
    let tag = Uuid::new_v4().simple().to_string();
    for n in 0..3 {
        let message = plain_message(&format!("{tag}-{n}"));
        mailer.send(message.envelope(), &message.formatted()).await.unwrap();
    }
    let peers: Vec<String> = (0..3)
        .map(|n| {
            let mail = mail_containing(&maildir, &format!("{tag}-{n}")).expect("delivered");
            mail.lines().find(|l| l.starts_with("X-Peer:")).expect("the server names the peer").to_owned()
        })
        .collect();
    assert!(peers.iter().all(|peer| *peer == peers[0]), "one connection: {peers:?}");
}

fn plain_message(subject: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("Stampede <tickets@stampede.local>".parse().unwrap())
        .to("ada@example.com".parse().unwrap())
        .subject(subject)
        .body(format!("{subject}\r\n"))
        .unwrap()
}

/// What a scripted SMTP server saw.
#[derive(Default)]
struct SmtpSeen {
    connections: AtomicUsize,
    noops: AtomicUsize,
    messages: AtomicUsize,
    /// Messages begun (`MAIL`) and not yet ended (the final `.`).
    open: AtomicUsize,
    /// How many were open as each began, itself included.
    at_mail: Mutex<Vec<usize>>,
}

/// How a scripted SMTP server treats the connections it accepts.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Script {
    /// Says yes to everything.
    KeepOpen,
    /// Closes each connection after its first message, as a server
    /// restarting or ending connections after some messages does.
    OneMessageEach,
    /// Refuses every sender after the first message, for good (550).
    RefuseAfterOne,
}

/// An SMTP server that follows `script` and counts what it sees.
async fn scripted_smtp_server(script: Script) -> (String, Arc<SmtpSeen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let seen = Arc::new(SmtpSeen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counts.connections.fetch_add(1, SeqCst);
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 scripted\r\n").await?;
                let mut in_data = false;
                while let Some(line) = lines.next_line().await? {
                    if in_data && line != "." {
                        continue;
                    }
                    let command = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let refusing = script == Script::RefuseAfterOne && counts.messages.load(SeqCst) > 0;
                    let reply: &[u8] = match command.as_str() {
                        _ if in_data => b"250 queued\r\n",
                        "MAIL" if refusing => b"550 not from you\r\n",
                        "MAIL" => {
                            let open = counts.open.fetch_add(1, SeqCst) + 1;
                            counts.at_mail.lock().unwrap().push(open);
                            b"250 OK\r\n"
                        }
                        "DATA" => b"354 go on\r\n",
                        "QUIT" => b"221 bye\r\n",
                        "NOOP" => {
                            counts.noops.fetch_add(1, SeqCst);
                            b"250 OK\r\n"
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(reply).await?;
                    if in_data {
                        counts.messages.fetch_add(1, SeqCst);
                        counts.open.fetch_sub(1, SeqCst);
                    }
                    if command == "QUIT" || in_data && script == Script::OneMessageEach {
                        break;
                    }
                    in_data = command == "DATA";
                }
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (url, seen)
}

/// Messages in quick succession go without a `NOOP` before each (a round
/// trip the server answers for nothing), and a connection the server has
/// closed meanwhile costs a new connection, not the message.
#[tokio::test]
async fn quick_messages_need_no_noop_and_a_closed_connection_costs_no_message() {
    for script in [Script::KeepOpen, Script::OneMessageEach] {
        let (url, seen) = scripted_smtp_server(script).await;
        let mailer = Mailer::new(&url, 1, Duration::from_secs(10)).unwrap();
        for n in 0..3 {
            let message = plain_message(&format!("message {n}"));
            mailer
                .send(message.envelope(), &message.formatted())
                .await
                .unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        let count = |counter: &AtomicUsize| counter.load(SeqCst);
        assert_eq!(count(&seen.messages), 3);
        assert_eq!(count(&seen.noops), 0);
        let connections = if script == Script::OneMessageEach { 3 } else { 1 };
        assert_eq!(count(&seen.connections), connections, "{script:?}");
    }
}

/// A message the server refuses for good is not sent again on a new
/// connection: only a connection's failure is worth a second one.
#[tokio::test]
async fn a_message_refused_for_good_is_not_sent_again_at_once() {
    let (url, seen) = scripted_smtp_server(Script::RefuseAfterOne).await;
    let mailer = Mailer::new(&url, 1, Duration::from_secs(10)).unwrap();
    let first = plain_message("welcome");
    mailer.send(first.envelope(), &first.formatted()).await.unwrap();
    let second = plain_message("refused");
    let refused = mailer.send(second.envelope(), &second.formatted()).await.expect_err("550");
    assert!(refused.to_string().contains("not from you"), "{refused}");
    assert_eq!(seen.connections.load(SeqCst), 1, "no second connection for a refusal");
}

#[tokio::test]
async fn failed_deliveries_back_off_and_organizer_webhooks_are_signed() {
    let (url, _) = smtp();
    let app = spawn_app().await;
    let received: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let sink = Arc::clone(&received);
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| async move {
            sink.lock().unwrap().push((headers, body));
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let (status, settings) = app
        .organizer(&app.key, Method::PUT, "/api/v1/organizer/webhook", Some(json!({"url": hook_url})))
        .await;
    assert_eq!(status, 200, "{settings}");
    let secret = settings["secret"].as_str().unwrap().to_owned();
    let number = buy(&app, "ada@example.com").await;

    // The mail server is unreachable: nothing is lost, the email waits.
    let unreachable = no_smtp();
    assert_eq!(deliver_due(&app.db, &unreachable).await.unwrap(), 1, "only the webhook got through");
    let (attempts, waits): (i32, bool) = sqlx::query_as(
        "SELECT attempts, next_attempt_at > now() FROM outbox WHERE kind = 'email.order_confirmed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((attempts, waits), (1, true));
    assert_eq!(
        deliver_due(&app.db, &Notifier::new(&url, "S <s@s.local>", LANES, TEST_PUBLIC_URL).unwrap())
            .await
            .unwrap(),
        0,
        "not due yet"
    );

    let hooks = received.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    let (headers, body) = &hooks[0];
    let signature = headers["stampede-signature"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    origin_inventory::signatures::verify(secret.as_bytes(), signature, body.as_bytes(), now).unwrap();
    let payload: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (payload["type"].as_str(), payload["data"]["order_number"].as_str()),
        (Some("order.created"), Some(number.as_str()))
    );
    // Receivers deduplicate on the message's stable id.
    assert_eq!(headers["webhook-id"].to_str().unwrap(), payload["id"].as_str().unwrap());
    assert!(payload["id"].as_str().unwrap().starts_with(|c: char| c.is_ascii_digit()), "{payload}");
}

/// Webhooks about `event`, due for a while (`due_for`, an interval). Of
/// an organizer without a webhook URL, each is delivered at once, with no
/// network.
pub async fn write_due_webhooks(app: &TestApp, event: &serde_json::Value, count: usize, due_for: &str) {
    write_due(app, event, count, due_for, &["webhook.order.created"]).await;
}

/// `count` messages about `event` of `kinds` in turn, due for a while
/// (`due_for`, an interval). Emails go to one address, with a short
/// confirmation (no order has their numbers).
async fn write_due(app: &TestApp, event: &serde_json::Value, count: usize, due_for: &str, kinds: &[&str]) {
    sqlx::query(
        "INSERT INTO outbox (kind, payload, next_attempt_at)
         SELECT $4[1 + (n - 1) % cardinality($4)],
                jsonb_build_object('event_id', $1::text, 'order_number', 'STM-' || n, 'to', 'ada@example.com'),
                now() - $3::interval
         FROM generate_series(1, $2) AS n",
    )
    .bind(event["id"].as_str().unwrap())
    .bind(count as i64)
    .bind(due_for)
    .bind(kinds)
    .execute(&app.db)
    .await
    .unwrap();
}

/// A notifier whose mail server is unreachable: webhooks go out, emails wait.
pub fn no_smtp() -> Notifier {
    Notifier::new("smtp://127.0.0.1:9", "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap()
}

/// A backlog (messages due since before the claims began) goes out batch
/// after batch: a claim that took a full batch lets the next begin no
/// higher than what it took.
#[tokio::test]
async fn a_backlog_older_than_the_claims_margin_goes_out_batch_after_batch() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    write_due_webhooks(&app, &event, 2 * BATCH + BATCH / 2, "5 minutes").await;
    let claims = Claims::new(Duration::from_secs(3600), Duration::ZERO);
    let notifier = no_smtp();
    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(deliver_due_until(&app.db, &notifier, LEASE, &claims, &|| false).await.unwrap());
    }
    assert_eq!(batches, [BATCH, BATCH, BATCH / 2]);
}

/// A message can commit after claims have moved past its due time (its
/// transaction began long before it committed); a claim from the start of
/// the index delivers it, and one comes every while.
#[tokio::test]
async fn a_message_committed_below_where_claims_begin_is_delivered_by_the_next_claim_from_the_start() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    // Long enough that the second claim, a statement after the first, is
    // not from the start on a busy machine.
    let full_every = Duration::from_secs(5);
    let claims = Claims::new(full_every, Duration::ZERO);
    let notifier = no_smtp();
    let deliver =
        || async { deliver_due_until(&app.db, &notifier, LEASE, &claims, &|| false).await.unwrap() };
    assert_eq!(deliver().await, 0, "nothing due: the next claim begins at this one's time");
    write_due_webhooks(&app, &event, 1, "1 minute").await;
    assert_eq!(deliver().await, 0, "below the floor");
    tokio::time::sleep(full_every).await;
    assert_eq!(deliver().await, 1);
}

#[tokio::test]
async fn a_stopping_sender_hands_its_claims_back_at_once() {
    let (url, _) = smtp();
    let app = spawn_app().await;
    buy(&app, &format!("ada+{}@example.com", Uuid::new_v4().simple())).await;
    let notifier = Notifier::new(&url, "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap();
    let stopping = || true;
    let delivered = deliver_due_until(&app.db, &notifier, LEASE, &Claims::full(), &stopping).await.unwrap();
    assert_eq!(delivered, 0);
    // Handed back: due now, for this instance or another, not a lease later.
    let due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= now() AND leased_until IS NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(due, 2, "the email and the webhook");
    assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), 2);
}

/// A write of the outbox's records passes its connection on to the next:
/// one that Postgres drops in between costs that write a retry on a new
/// connection, not a message. Every message is sent once and recorded.
#[tokio::test]
async fn connections_dropped_between_records_cost_no_message() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    write_due(&app, &event, BATCH, "1 minute", &["email.order_confirmed"]).await;
    let (url, seen) = scripted_smtp_server(Script::KeepOpen).await;
    let notifier = Notifier::new(&url, "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap();
    let drop_connections = async {
        while seen.messages.load(SeqCst) < BATCH / 4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..2 {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .execute(&app.db)
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (delivered, ()) = tokio::join!(deliver_due(&app.db, &notifier), drop_connections);
    assert_eq!(delivered.unwrap(), BATCH);
    assert_eq!(seen.messages.load(SeqCst), BATCH, "each message sent once");
    let unrecorded: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(unrecorded, 0);
}

/// The lanes stay busy from a batch's first message to its last: each
/// waits for the write that records its own outcome, not for the writes
/// of the lanes behind it (once each waited in turn for those, and after
/// the first round the outbox sent one message at a time).
#[tokio::test]
async fn every_lane_keeps_sending_from_the_first_message_of_a_batch_to_the_last() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    // Webhooks and emails in turn, the webhooks delivered with no network
    // (the organizer has no URL): an order's two messages.
    write_due(&app, &event, BATCH, "1 minute", &["webhook.order.created", "email.order_confirmed"]).await;
    let (url, seen) = scripted_smtp_server(Script::KeepOpen).await;
    let notifier = Notifier::new(&url, "Stampede <tickets@stampede.local>", LANES, TEST_PUBLIC_URL).unwrap();

    assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), BATCH);
    let at_mail = seen.at_mail.lock().unwrap().clone();
    assert_eq!(at_mail.len(), BATCH / 2);
    let busiest_late = at_mail[BATCH / 4..].iter().copied().max().unwrap();
    assert!(
        busiest_late >= LANES / 4,
        "at most {busiest_late} emails at once in the batch's second half: {at_mail:?}"
    );
}
