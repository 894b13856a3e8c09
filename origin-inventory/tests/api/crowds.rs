//! What one buyer's requests cost Postgres must not grow with the crowd.
//! In a real on-sale thousands of buyers hold seats at once while they type
//! their card numbers: a statement that walks the seats, reservations or
//! payments others hold makes every order slower the bigger the sale. Nor
//! may what the origin reads in the background grow with the seats sold.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use origin_inventory::outbox::{BATCH, Claims, LEASE, deliver_due, deliver_due_until};
use origin_inventory::test_support::OriginOptions;

use crate::checkout::card_for;
use crate::helpers::{TestApp, spawn_app_with};
use crate::holds::{event_with_seats, sell_best_available};
use crate::notifications::{no_smtp, write_due_webhooks};

/// Buyers who join the crowd holding seats, unpaid, between two
/// measurements of one more buyer.
const CROWD: usize = 600;
/// Orders of an earlier sale.
const HISTORY: usize = 500;
/// Messages waiting for delivery behind the outbox's first claim; then
/// twice as many.
const BACKLOG: usize = 2_000;
/// Messages sent since the outbox's last vacuum, in the claim's test.
const SENT_SINCE_VACUUM: usize = 20_000;
/// Buffers per call a statement may read more among twice the crowd than
/// among the crowd. A statement that fetches a row for each hold reads 600
/// more (a buffer per row); an index lookup reads about the same (an index
/// of 1,200 entries is as deep as one of 600); what a busier table adds
/// besides (a page split, a function's lookups each a little deeper, a
/// background step that found one more row) stays well under it. An index
/// walked without fetching rows (some 100 entries per leaf page) adds a few
/// buffers and passes.
const GROWTH_ALLOWED: f64 = 50.0;

/// Postgres's own account of what each statement run on a test's database
/// read (`pg_stat_statements`, loaded by the test cluster of `cargo xtask
/// test`).
struct Statements {
    db: PgPool,
}

/// An origin on one connection, and its statements measured: every
/// statement measured runs on a connection that has run it before (a
/// connection's first statements also read the catalog).
async fn measured_app() -> (TestApp, Statements) {
    let app = spawn_app_with(OriginOptions { pool_size: Some(1), ..OriginOptions::default() }).await;
    let statements = Statements::of(&app).await;
    (app, statements)
}

/// What one statement read while measured.
struct Measured {
    /// One of its texts: Postgres shows a constant as `$n` when it first
    /// meets the statement while parsing it, but as written when it first
    /// meets it at the end of a run of a statement prepared before the
    /// measurement began, so the same statement's text differs between
    /// measurements (its `queryid` does not).
    query: String,
    buffers_per_call: f64,
}

/// What each statement read, by `pg_stat_statements`' `queryid`.
type Reads = HashMap<i64, Measured>;

/// Fails unless the statement whose text contains `text` read at most
/// `allowed` buffers per call more `after` than `before`.
fn assert_not_grown(before: &Reads, after: &Reads, text: &str, allowed: f64) {
    let (id, was) = before
        .iter()
        .find(|(_, was)| was.query.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} measured"));
    let now = after.get(id).unwrap_or_else(|| panic!("{:?} not run the second time", was.query));
    assert!(
        now.buffers_per_call <= was.buffers_per_call + allowed,
        "{:.0} → {:.0} buffers: {}",
        was.buffers_per_call,
        now.buffers_per_call,
        was.query
    );
}

impl Statements {
    async fn of(app: &TestApp) -> Self {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(&app.db).await.unwrap();
        sqlx::query("SELECT count(*) FROM pg_stat_statements").execute(&app.db).await.expect(
            "pg_stat_statements: start the test cluster with shared_preload_libraries = pg_stat_statements \
             (cargo xtask test does)",
        );
        Self { db: app.db.clone() }
    }

    /// Buffers per call of each statement run on this database while
    /// `requests` ran.
    async fn during(&self, requests: impl std::future::Future<Output = ()>) -> Reads {
        let evictions_before = self.evictions().await;
        sqlx::query(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)",
        )
        .execute(&self.db)
        .await
        .unwrap();
        requests.await;
        let rows: Vec<(i64, String, f64)> = sqlx::query_as(
            "SELECT queryid, query, (shared_blks_hit + shared_blks_read)::float8 / calls FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0",
        )
        .fetch_all(&self.db)
        .await
        .unwrap();
        assert_eq!(
            self.evictions().await,
            evictions_before,
            "pg_stat_statements evicted entries while measuring (the other tests' databases filled it): \
             raise pg_stat_statements.max (cargo xtask test sets 100000)"
        );
        rows.into_iter()
            .map(|(id, query, buffers_per_call)| (id, Measured { query, buffers_per_call }))
            .collect()
    }

    /// What each statement read at least, over two runs of `requests`.
    /// Postgres sometimes drops a backend's cached catalog and plans
    /// (when other tests' databases overflow its invalidation queue), and
    /// the statement that runs next reads them again, hundreds of buffers
    /// once; a statement that walks what grows reads it on every run.
    async fn least_of_two<F: std::future::Future<Output = ()>>(&self, requests: impl Fn() -> F) -> Reads {
        let mut least = self.during(requests()).await;
        for (id, second) in self.during(requests()).await {
            let first =
                least.entry(id).or_insert(Measured { query: second.query, buffers_per_call: f64::MAX });
            first.buffers_per_call = first.buffers_per_call.min(second.buffers_per_call);
        }
        least
    }

    /// How many times `pg_stat_statements` has made room by dropping its
    /// least-called entries, which may be those being measured.
    async fn evictions(&self) -> i64 {
        sqlx::query_scalar("SELECT dealloc FROM pg_stat_statements_info").fetch_one(&self.db).await.unwrap()
    }
}

/// One buyer's whole visit: a best-available hold, extended and paid; a
/// second hold, released.
async fn one_buyer(app: &TestApp, event: &str, section: &str, buyer: &str) {
    let hold = hold_one(app, buyer, event, section).await;
    // What the event's page shows the buyer, reloaded.
    let current = format!("/api/v1/events/{event}/reservations/current");
    let (status, running) = app.buyer(buyer, Method::GET, &current, None).await;
    assert_eq!((status, &running["reservation_id"]), (200, &hold["reservation_id"]), "{running}");
    let path = format!("/api/v1/reservations/{}", hold["reservation_id"].as_str().unwrap());
    let extend = Some(json!({"additional_seconds": 60}));
    let (status, extended) = app.buyer(buyer, Method::PATCH, &format!("{path}/extend"), extend).await;
    assert_eq!(status, 200, "{extended}");
    // A key of its own: a buyer may visit again (see `least_of_two`).
    let (status, order) = app.commit(buyer, &hold, &format!("pay-{}", Uuid::new_v4()), card_for(buyer)).await;
    assert_eq!(status, 200, "{order}");

    let second = hold_one(app, buyer, event, section).await;
    let path = format!("/api/v1/reservations/{}", second["reservation_id"].as_str().unwrap());
    assert_eq!(app.buyer(buyer, Method::DELETE, &path, None).await.0, 204);
}

/// A best-available hold of one seat of `section`.
async fn hold_one(app: &TestApp, buyer: &str, event: &str, section: &str) -> serde_json::Value {
    let body = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, hold) = app.hold(buyer, event, body).await;
    assert_eq!(status, 201, "{hold}");
    hold
}

/// An earlier sale: `HISTORY` buyers bought a seat of another event each,
/// so the tables are not the few rows of a new database (where Postgres
/// rightly reads a whole table rather than an index, and keeps that plan).
async fn sold_before(app: &TestApp) {
    let (event, _) = event_with_seats(app, (HISTORY / 10) as u8, json!({})).await;
    let section = app.a_section_of(&event).await;
    sell_best_available(app, &event, &section, HISTORY, 1).await;
}

/// `CROWD` more buyers hold one seat each, the best left, right where
/// the next picks start.
async fn crowd_in(app: &TestApp, event: &str, section: &str, first: usize) {
    for wave in (first..first + CROWD).collect::<Vec<_>>().chunks(16) {
        join_all(wave.iter().map(|n| async move {
            hold_one(app, &format!("crowd-{n}@example.com"), event, section).await;
        }))
        .await;
    }
    // The frontiers' advancer has read the crowd's holds before we measure.
    tokio::time::sleep(origin_inventory::frontiers::INTERVAL * 3).await;
}

/// A measured origin after an earlier sale, with an event on sale and
/// its section, and one buyer's visit done: statistics taken before the
/// sale, as autovacuum takes them once the seats are added (the partial
/// indexes of what is held or pending look empty, and plans made from
/// then on bet that they stay small), and plans made (and kept) by the
/// first calls.
async fn a_sale_with_plans_made() -> (TestApp, Statements, String, String) {
    let (app, statements) = measured_app().await;
    sold_before(&app).await;
    let (event, _) = event_with_seats(&app, 125, json!({})).await;
    let section = app.a_section_of(&event).await;
    sqlx::query("ANALYZE").execute(&app.db).await.unwrap();
    one_buyer(&app, &event, &section, "early@example.com").await;
    (app, statements, event, section)
}

#[tokio::test]
async fn a_buyer_costs_postgres_the_same_among_600_or_1200_others_holding_seats() {
    let (app, statements, event, section) = a_sale_with_plans_made().await;

    crowd_in(&app, &event, &section, 0).await;
    let among_crowd =
        statements.least_of_two(|| one_buyer(&app, &event, &section, "among@example.com")).await;
    crowd_in(&app, &event, &section, CROWD).await;
    let among_twice =
        statements.least_of_two(|| one_buyer(&app, &event, &section, "among-twice@example.com")).await;

    assert_no_visit_grown(&among_crowd, &among_twice, "statements reading what the crowd holds");
}

/// Fails unless every step of [`one_buyer`]'s visit was measured both
/// times, and no statement read more than [`GROWTH_ALLOWED`] buffers per
/// call more the second time than the first.
fn assert_no_visit_grown(first: &Reads, second: &Reads, failure: &str) {
    let compared: Vec<(&Measured, &Measured)> =
        first.iter().filter_map(|(id, once)| Some((once, second.get(id)?))).collect();
    // Postgres shows constants as $n in some texts.
    for step in [
        "hold_as_planned",
        "begin_payments",
        "book_paid_orders",
        "SET expires_at",
        "SET status = $2, updated_at",
        "\"paying!\"",
        "created_at DESC",
    ] {
        assert!(
            compared.iter().any(|(once, twice)| once.query.contains(step) || twice.query.contains(step)),
            "no statement with {step:?} measured: {:#?}",
            compared.iter().map(|(once, _)| &once.query).collect::<Vec<_>>()
        );
    }
    let grown: Vec<String> = compared
        .iter()
        .filter(|(once, twice)| twice.buffers_per_call > once.buffers_per_call + GROWTH_ALLOWED)
        .map(|(once, twice)| {
            format!("{:.0} → {:.0} buffers: {}", once.buffers_per_call, twice.buffers_per_call, once.query)
        })
        .collect();
    assert!(grown.is_empty(), "{failure}:\n{}", grown.join("\n"));
}

/// A one-seat hold of `event` for each of `buyers`, the first expiring
/// `expiry` from now (an interval) and each next a millisecond later.
async fn insert_holds(app: &TestApp, event: &str, buyers: &[String], expiry: &str) {
    sqlx::query(
        "INSERT INTO reservations (id, event_id, buyer_id, client_reservation_id, seat_count, total_cents, currency,
                                   expires_at)
         SELECT gen_random_uuid(), $1::uuid, b.buyer, gen_random_uuid(), 1, 5000, 'EUR',
                now() + $3::interval + b.n * interval '1 ms'
         FROM unnest($2::text[]) WITH ORDINALITY AS b(buyer, n)",
    )
    .bind(event)
    .bind(buyers)
    .bind(expiry)
    .execute(&app.db)
    .await
    .unwrap();
}

/// Holds of one buyer that ended before (a buyer who came back, a script
/// retrying): the first buyer measured has had this many; the second, twice.
const OWN_ENDED_HOLDS: usize = 150;

/// `count` holds of `buyer` on `event`, held and then released, as the
/// buyer's earlier visits leave them; and `count * 4` holds of others
/// whose payment is under way, as a sale's buyers leave them while their
/// card is being charged.
async fn own_past_and_others_paying(app: &TestApp, event: &str, buyer: &str, count: usize, batch: &str) {
    let others = (1..=count * 4).map(|n| format!("paying-{batch}-{n}"));
    let buyers: Vec<String> = std::iter::repeat_n(buyer.to_owned(), count).chain(others).collect();
    insert_holds(app, event, &buyers, "10 minutes").await;
    sqlx::query("UPDATE reservations SET status = 'released' WHERE buyer_id = $1 AND status = 'held'")
        .bind(buyer)
        .execute(&app.db)
        .await
        .unwrap();
    // Pending for less than the reconciler's window: it leaves them alone.
    sqlx::query(
        "INSERT INTO payments (id, reservation_id, idempotency_key, request_hash, provider, payment_method,
                               billing_name, billing_email, amount_cents, currency)
         SELECT gen_random_uuid(), id, 'paying-' || id, '\\x00', 'sandbox', 'pm_card_visa', 'Ada', 'ada@example.com',
                5000, 'EUR'
         FROM reservations WHERE buyer_id LIKE 'paying-' || $1 || '-%'",
    )
    .bind(batch)
    .execute(&app.db)
    .await
    .unwrap();
}

/// One buyer's visit must not read the buyer's own earlier holds, however
/// many they made (a returning buyer, a script retrying holds), nor the
/// payments others have under way. A release and an extension looked the
/// hold up by its key and its buyer, and Postgres took the buyer's index,
/// reading every hold the buyer ever made; the release's check for a
/// payment under way walked every pending payment; each hold's check for
/// the buyer's lapsed holds read all the buyer's holds, of every event.
#[tokio::test]
async fn a_buyer_costs_postgres_the_same_after_their_own_past_holds_and_among_others_paying() {
    let (app, statements, event, section) = a_sale_with_plans_made().await;

    let (first, second) = ("returning@example.com", "returning-twice@example.com");
    own_past_and_others_paying(&app, &event, &app.buyer_id(first).await, OWN_ENDED_HOLDS, "a").await;
    let after_some = statements.least_of_two(|| one_buyer(&app, &event, &section, first)).await;
    own_past_and_others_paying(&app, &event, &app.buyer_id(second).await, OWN_ENDED_HOLDS * 2, "b").await;
    let after_twice = statements.least_of_two(|| one_buyer(&app, &event, &section, second)).await;

    assert_no_visit_grown(
        &after_some,
        &after_twice,
        "statements reading the buyer's past or others' payments",
    );
}

/// Holds that ended (paid, released, lapsed) longer ago than a hold
/// lasts, as a sale running longer than its hold TTL leaves them: tens of
/// thousands, before autovacuum gets to the table.
const ENDED_HOLDS: usize = 40_000;

/// Writes `ENDED_HOLDS` holds of `event` that ended longer ago than a hold
/// lasts: held, then paid.
async fn holds_ended_long_ago(app: &TestApp, event: &str, batch: &str) {
    let buyers: Vec<String> = (1..=ENDED_HOLDS).map(|n| format!("ended-{batch}-{n}")).collect();
    insert_holds(app, event, &buyers, "-1 hour").await;
    sqlx::query("UPDATE reservations SET status = 'committed' WHERE buyer_id LIKE $1")
        .bind(format!("ended-{batch}-%"))
        .execute(&app.db)
        .await
        .unwrap();
}

/// A hold ends by a new version of its reservation; the old one, held,
/// stays in the indexes of held reservations until vacuum. Once the hold's
/// lifetime has passed, such an entry looks like a lapsed hold to a scan
/// by expiry. On the local stack, in a run of orders an hour after earlier
/// ones, every hold read 116 buffers more that way (its check for the
/// buyer's own lapsed holds), until autovacuum came.
#[tokio::test]
async fn a_hold_costs_the_same_after_tens_of_thousands_of_holds_ended_longer_ago_than_a_hold_lasts() {
    let (app, statements) = measured_app().await;
    let (event, _) = event_with_seats(&app, 125, json!({})).await;
    let section = app.a_section_of(&event).await;
    // A sale under way, as autovacuum leaves it: a big table, and no hold
    // in the indexes of held reservations. From then on it stays away, as
    // it does for minutes of a sale.
    holds_ended_long_ago(&app, &event, "before").await;
    sqlx::query("VACUUM ANALYZE reservations").execute(&app.db).await.unwrap();
    sqlx::query("ALTER TABLE reservations SET (autovacuum_enabled = false)").execute(&app.db).await.unwrap();
    // Plans are made (and kept) by the first calls.
    hold_one(&app, "early@example.com", &event, &section).await;
    // Each measured hold is a new buyer's first.
    let buyers = std::sync::atomic::AtomicUsize::new(0);
    let hold = || async {
        let buyer = format!("buyer{}@example.com", buyers.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        drop(hold_one(&app, &buyer, &event, &section).await);
    };
    let before = statements.least_of_two(hold).await;

    holds_ended_long_ago(&app, &event, "after").await;
    let after = statements.least_of_two(hold).await;

    assert_not_grown(&before, &after, "hold_as_planned", GROWTH_ALLOWED);
}

/// Every origin reads the settings of every live waiting room every two
/// seconds for the edge, each with whether its sale sold out. A sold-out
/// sale has nothing but sold seats: finding none free must not read them.
#[tokio::test]
async fn the_waiting_rooms_learn_a_sale_sold_out_without_reading_its_sold_seats() {
    let (app, statements) = measured_app().await;
    let (on_sale, _) = event_with_seats(&app, 250, json!({})).await;
    let (sold_out, _) = event_with_seats(&app, 250, json!({})).await;
    let (last_held, _) = event_with_seats(&app, 250, json!({})).await;
    hold_one(&app, "last@example.com", &last_held, &app.a_section_of(&last_held).await).await;
    // Sold as a sale's orders leave its seats (thousands of orders would
    // take the test minutes; only the seats' state matters here).
    for event in [&sold_out, &last_held] {
        sqlx::query(
            "UPDATE inventory SET status = 'BOOKED' WHERE event_id = $1::uuid AND status = 'AVAILABLE'",
        )
        .bind(event)
        .execute(&app.db)
        .await
        .unwrap();
    }
    // As autovacuum leaves a table that sold out a while ago.
    sqlx::query("VACUUM ANALYZE inventory").execute(&app.db).await.unwrap();

    let sold_out_of = |rooms: &[wire::room::RoomSettings], event: &str| {
        rooms.iter().find(|room| room.event_id == event).map(|room| room.sold_out)
    };
    let rooms = origin_inventory::catalog::live_waiting_rooms(&app.db).await.unwrap();
    assert_eq!(sold_out_of(&rooms, &on_sale), Some(false));
    assert_eq!(sold_out_of(&rooms, &sold_out), Some(true));
    assert_eq!(sold_out_of(&rooms, &last_held), Some(false), "a held seat may still be sold");
    let (status, room) = app.get(&format!("/api/v1/events/{sold_out}/waiting-room")).await;
    assert_eq!((status, &room["sold_out"]), (200, &json!(true)), "{room}");

    let read = statements
        .least_of_two(|| async {
            origin_inventory::catalog::live_waiting_rooms(&app.db).await.unwrap();
        })
        .await;
    let buffers = read
        .values()
        .find(|statement| statement.query.contains("sold_out"))
        .map(|statement| statement.buffers_per_call)
        .expect("the rooms' statement");
    let pages: i64 =
        sqlx::query_scalar("SELECT pg_relation_size('inventory') / current_setting('block_size')::int")
            .fetch_one(&app.db)
            .await
            .unwrap();
    // A few buffers per room (an index's root and leaf, a seat): 10 here.
    // Walking the sold seats read 331, more than the table's 205 pages.
    assert!(buffers < 30.0, "{buffers} buffers for three waiting rooms, of a table of {pages} pages");
}

/// The outbox worker claims a batch four times a second. While orders come
/// in faster than mail goes out thousands of messages wait behind it, and
/// every message ever sent stays in the table: a claim must read the batch
/// it takes, neither the backlog behind it nor the history before it.
#[tokio::test]
async fn a_claim_of_the_outbox_costs_the_same_whatever_waits_behind_it_or_was_sent_before() {
    let (app, statements) = measured_app().await;
    let event = app.on_sale_event(json!({})).await;
    // Webhooks of an organizer without a webhook URL: delivered at once,
    // with no network between claims.
    let write = |count| write_due_webhooks(&app, &event, count, "0s");
    // As autovacuum leaves the table between claims.
    let vacuumed = || sqlx::query("VACUUM ANALYZE outbox").execute(&app.db);
    let notifier = no_smtp();
    let claim_one_batch = || async { assert_eq!(deliver_due(&app.db, &notifier).await.unwrap(), BATCH) };

    write(10 * BACKLOG).await;
    all_sent(&app).await;
    write(BACKLOG).await;
    vacuumed().await.unwrap();
    claim_one_batch().await;
    let before = statements.least_of_two(claim_one_batch).await;
    // Twice the history, twice the backlog.
    all_sent(&app).await;
    write(9 * BACKLOG).await;
    all_sent(&app).await;
    write(2 * BACKLOG).await;
    vacuumed().await.unwrap();
    let after = statements.least_of_two(claim_one_batch).await;

    // Each of the batch's messages gets new index entries, a level deeper
    // for some in a bigger table: a buffer per message more is allowed.
    assert_not_grown(&before, &after, "SKIP LOCKED", BATCH as f64);
}

/// Marks every message waiting in the outbox as sent, as a sale's
/// deliveries leave them.
async fn all_sent(app: &TestApp) {
    sqlx::query("UPDATE outbox SET delivered_at = now() WHERE delivered_at IS NULL")
        .execute(&app.db)
        .await
        .unwrap();
}

/// Between two vacuums every message sent leaves its entry in
/// `outbox_due`, below the messages still due: a claim walking the index
/// from its start reads all of them, hundreds of thousands on a busy
/// outbox. A claim must begin above the messages sent before it.
#[tokio::test]
async fn an_outbox_claim_between_vacuums_steps_over_none_of_the_messages_sent_before() {
    let (app, statements) = measured_app().await;
    let event = app.on_sale_event(json!({})).await;
    let write = |count: usize, due_for: &'static str| write_due_webhooks(&app, &event, count, due_for);
    let notifier = no_smtp();
    // One walk from the start an hour, none while measured; each claim
    // begins where the one before it was made (no margin), so each walks
    // the batch it takes, and no batch it follows.
    let claims = Claims::new(Duration::from_secs(3600), Duration::ZERO);
    let claim_one_batch = || async {
        assert_eq!(deliver_due_until(&app.db, &notifier, LEASE, &claims, &|| false).await.unwrap(), BATCH);
    };

    // The table as autovacuum leaves it after an hour of sales (indexes as
    // deep as later); then autovacuum kept away, as for minutes of a sale.
    write(SENT_SINCE_VACUUM, "1 hour").await;
    all_sent(&app).await;
    sqlx::query("VACUUM ANALYZE outbox").execute(&app.db).await.unwrap();
    sqlx::query("ALTER TABLE outbox SET (autovacuum_enabled = off)").execute(&app.db).await.unwrap();
    let write_and_claim_one_batch = || async {
        write(BATCH, "0s").await;
        claim_one_batch().await;
    };
    write_and_claim_one_batch().await;
    let before = statements.least_of_two(write_and_claim_one_batch).await;
    write(SENT_SINCE_VACUUM, "1 minute").await;
    all_sent(&app).await;
    let after = statements.least_of_two(write_and_claim_one_batch).await;

    // From the start of the index, each claim after them read more: 611 →
    // 690 buffers for the lesser (the second, stepping over the entries
    // the first found dead).
    assert_not_grown(&before, &after, "SKIP LOCKED", GROWTH_ALLOWED);
}

/// Every search of the catalog is a page the edge has not cached, so the
/// origin answers it, as often as visitors (or a script) ask for new ones.
/// A page must count the seats of the events it shows, not of every event.
#[tokio::test]
async fn a_catalog_page_counts_the_seats_of_its_own_events_only() {
    let (app, statements) = measured_app().await;
    let first_page = || async {
        let (status, page) = app.get("/api/v1/events?limit=1").await;
        assert_eq!(status, 200, "{page}");
        page
    };
    // The page's event is small beside the others, as most events of a
    // catalog are: counting it by reading the whole table stands out.
    event_with_seats(&app, 25, json!({"starts_at": "2030-05-01T19:00:00Z"})).await;
    // Plans are made (and kept) by the first call.
    first_page().await;
    let visit = || async { drop(first_page().await) };
    let among_one = statements.least_of_two(visit).await;
    for _ in 0..4 {
        event_with_seats(&app, 250, json!({})).await;
    }
    let page = first_page().await;
    assert_eq!((page["meta"]["total"].as_u64(), page["data"].as_array().map(Vec::len)), (Some(5), Some(1)));
    assert_eq!(page["data"][0]["availability"]["available_seats"], 250, "{page}");
    // As autovacuum leaves the tables after the new events' seats, so that
    // the plan measured is the one their statistics make.
    sqlx::query("ANALYZE").execute(&app.db).await.unwrap();
    let among_five = statements.least_of_two(visit).await;

    assert_not_grown(&among_one, &among_five, "catalog_list", GROWTH_ALLOWED);
}
