use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use origin_inventory::beginning::{Beginning, Beginnings};
use origin_inventory::booking::{Booking, Bookings};
use origin_inventory::payments::Payments;
use origin_inventory::payments::{SandboxFaults, SandboxProvider};
use origin_inventory::settlement::reconcile;
use origin_inventory::tickets::verify_ticket_code;
use origin_inventory::warm::WarmPool;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TEST_TICKET_SECRET, TEST_WEBHOOK_SECRET, TestApp, spawn_app, spawn_app_with_faults};
use crate::holds::{assert_consistent, event_with_seats};

pub fn card(pm: &str) -> Value {
    json!({"payment_method_id": pm, "billing_details": {"name": "Ada Lovelace", "email": "ada@example.com"}})
}

/// A card that succeeds, billed to `email`.
pub fn card_for(email: &str) -> Value {
    json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "Ada Lovelace", "email": email}})
}

pub async fn held(app: &TestApp, buyer: &str, seats: usize) -> (String, Value) {
    let (event, ids) = event_with_seats(app, 1, json!({})).await;
    let (status, hold) = app
        .hold(buyer, &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": &ids[..seats]}))
        .await;
    assert_eq!(status, 201, "{hold}");
    (event, hold)
}

async fn charges(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'succeeded' AND NOT refunded), count(*) FILTER (WHERE refunded)
         FROM sandbox_charges",
    )
    .fetch_one(&app.ledger)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_paid_hold_becomes_an_order_with_verifiable_tickets() {
    let app = spawn_app().await;
    let (event, hold) = held(&app, "ada", 2).await;
    let (status, order) = app.commit("ada", &hold, "key-1", card("pm_card_visa")).await;
    assert_eq!(status, 200, "{order}");
    assert!(order["order_number"].as_str().unwrap().starts_with("STM-"));
    assert_eq!(order["total_cents"], 8000);
    let tickets = order["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    let event_id: Uuid = event.parse().unwrap();
    for ticket in tickets {
        let seat: Uuid = ticket["seat_id"].as_str().unwrap().parse().unwrap();
        let code = ticket["code"].as_str().unwrap();
        assert!(verify_ticket_code(TEST_TICKET_SECRET, code, event_id, seat).is_some(), "{code}");
    }
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory WHERE status = 'BOOKED'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(booked, 2);
    assert_consistent(&app, &event).await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM outbox ORDER BY id").fetch_all(&app.db).await.unwrap();
    assert_eq!(kinds, ["email.order_confirmed", "webhook.order.created"]);

    let qr = app.client.get(app.url(tickets[0]["qr_svg_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
    let forged = app.client.get(app.url("/api/v1/tickets/0000.1111/qr.svg")).send().await.unwrap();
    assert_eq!(forged.status(), 404);

    let path = format!("/api/v1/orders/{}", order["order_number"].as_str().unwrap());
    let (status, fetched) = app.buyer("ada", Method::GET, &path, None).await;
    assert_eq!((status, &fetched["tickets"]), (200, &order["tickets"]));
    assert_eq!(app.buyer("eve", Method::GET, &path, None).await.0, 404);
    let (status, body) = app.commit("ada", &hold, "key-2", card("pm_card_visa")).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_committed")));
    assert_eq!(charges(&app).await, (1, 0));
}

/// Ids in the order they were made (origin_inventory::ids): each index on
/// them grows at its right edge instead of at a random page.
#[tokio::test]
async fn the_rows_a_sale_writes_are_keyed_in_the_order_they_were_made() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 2, json!({})).await;
    for (buyer, seat) in [("ada", &seats[0]), ("bob", &seats[1]), ("cy", &seats[2])] {
        let (status, hold) = app
            .hold(buyer, &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seat]}))
            .await;
        assert_eq!(status, 201, "{hold}");
        let (status, order) = app.commit(buyer, &hold, &format!("key-{buyer}"), card("pm_card_visa")).await;
        assert_eq!(status, 200, "{order}");
    }
    let in_turn = |table: &str, id: &str, made: &str| {
        format!(
            "SELECT array_agg({id} ORDER BY {made}) = array_agg({id} ORDER BY {id}), count(*) FROM {table}"
        )
    };
    for (table, id, made) in [
        ("reservations", "id", "created_at"),
        ("payments", "id", "created_at"),
        ("orders", "id", "created_at"),
        ("tickets t JOIN orders o ON o.id = t.order_id", "t.id", "o.created_at"),
        // The seat map's plan order: section, row, number.
        ("seats", "id", "row_label, number"),
    ] {
        let (ordered, rows): (bool, i64) =
            sqlx::query_as(&in_turn(table, id, made)).fetch_one(&app.db).await.unwrap();
        assert!(ordered && rows >= 3, "{table}: ids not in the order the rows were made ({rows} rows)");
    }
    let (ordered, rows): (bool, i64) =
        sqlx::query_as(&in_turn("sandbox_charges", "id", "created_at")).fetch_one(&app.ledger).await.unwrap();
    assert!(ordered && rows == 3, "the sandbox's charges: not in the order made ({rows} rows)");
}

#[tokio::test]
async fn a_replayed_commit_returns_the_first_answer_and_a_reused_key_is_refused() {
    let app = spawn_app().await;
    let (_, hold) = held(&app, "ada", 1).await;
    let first = app.commit("ada", &hold, "same-key", card("pm_card_visa")).await;
    let again = app.commit("ada", &hold, "same-key", card("pm_card_visa")).await;
    assert_eq!(first, again);
    let (status, body) = app.commit("ada", &hold, "same-key", card("pm_card_mastercard")).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(charges(&app).await, (1, 0));
}

/// A key names a payment of one hold: the same key on another hold, the
/// buyer's own or someone else's, pays that hold.
#[tokio::test]
async fn an_idempotency_key_belongs_to_its_hold() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let mut orders = BTreeSet::new();
    for (buyer, seat) in [("ada", &seats[0]), ("ada", &seats[1]), ("bob", &seats[2])] {
        let (status, hold) = app
            .hold(buyer, &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seat]}))
            .await;
        assert_eq!(status, 201, "{hold}");
        let (status, order) = app.commit(buyer, &hold, "same-key", card("pm_card_visa")).await;
        assert_eq!(status, 200, "{order}");
        // A retry of the same request is still the same payment.
        assert_eq!(app.commit(buyer, &hold, "same-key", card("pm_card_visa")).await, (status, order.clone()));
        orders.insert(order["order_number"].as_str().unwrap().to_owned());
    }
    assert_eq!(orders.len(), 3);
    assert_eq!(charges(&app).await, (3, 0));
}

/// Ten commits with one key and ten with other keys, at once, from client
/// threads apart from the server's: one charge, one order; every 200 is the
/// same answer byte for byte; the others are told why (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_commits_charge_once() {
    let app = spawn_app().await;
    let (event, hold) = held(&app, "ada", 2).await;
    let path = format!("/api/v1/reservations/{}/commit", hold["reservation_id"].as_str().unwrap());
    let session = app.session("ada").await;
    let same_key = (0..10).map(|_| "dup".to_owned());
    let keys: Vec<String> = same_key.chain((0..10).map(|i| format!("k{i}"))).collect();
    let commits = keys.iter().map(|key| {
        let request = app.client.post(app.url(&path)).bearer_auth(&session).header("idempotency-key", key);
        let request = request.json(&card("pm_card_visa"));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    });
    let answers: Vec<(u16, String)> = join_all(commits).await.into_iter().map(Result::unwrap).collect();
    let paid: BTreeSet<&str> =
        answers.iter().filter(|(s, _)| *s == 200).map(|(_, body)| body.as_str()).collect();
    assert_eq!(paid.len(), 1, "every 200 is the one order's answer, byte for byte: {paid:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        let code = serde_json::from_str::<Value>(body).unwrap()["error"].as_str().unwrap().to_owned();
        assert!(
            *status == 409 && ["commit_in_progress", "already_committed"].contains(&code.as_str()),
            "{status} {body}"
        );
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 1);
    assert_eq!(charges(&app).await, (1, 0), "exactly one charge");
    assert_consistent(&app, &event).await;
    // Afterwards the winning key replays its answer, any other key is told it is paid.
    let winner = serde_json::from_str::<Value>(paid.first().unwrap()).unwrap();
    let (status, again) = app.commit("ada", &hold, "late-key", card("pm_card_visa")).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("already_committed")), "{again}");
    assert!(winner["order_number"].is_string());
}

#[tokio::test]
async fn a_declined_card_keeps_the_hold_and_allows_a_retry() {
    let app = spawn_app().await;
    let (_, hold) = held(&app, "ada", 1).await;
    let (status, body) =
        app.commit("ada", &hold, "try-1", card("pm_card_chargeDeclinedInsufficientFunds")).await;
    assert_eq!(
        (status, body["error"].as_str(), body["decline_code"].as_str()),
        (402, Some("payment_failed"), Some("insufficient_funds"))
    );
    let path = format!("/api/v1/reservations/{}", hold["reservation_id"].as_str().unwrap());
    assert_eq!(app.buyer("ada", Method::GET, &path, None).await.1["status"], "held");
    assert_eq!(
        app.commit("ada", &hold, "try-1", card("pm_card_chargeDeclinedInsufficientFunds")).await.0,
        402,
        "replayed"
    );
    let (status, order) = app.commit("ada", &hold, "try-2", card("pm_card_visa")).await;
    assert_eq!(status, 200, "{order}");
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM outbox ORDER BY id").fetch_all(&app.db).await.unwrap();
    assert_eq!(kinds[0], "email.payment_failed");
}

#[tokio::test]
async fn an_expired_hold_is_never_charged() {
    let app = spawn_app().await;
    let (_, hold) = held(&app, "ada", 1).await;
    app.expire(&hold).await;
    let (status, body) = app.commit("ada", &hold, "late", card("pm_card_visa")).await;
    assert_eq!((status, body["error"].as_str()), (410, Some("reservation_expired")));
    assert_eq!(charges(&app).await, (0, 0));
    let still_held: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory WHERE status = 'HELD'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(still_held, 0, "the late commit freed the seats without waiting for the sweeper");
}

#[tokio::test]
async fn commit_input_is_validated() {
    let app = spawn_app().await;
    let (_, hold) = held(&app, "ada", 1).await;
    let (status, body) = app
        .commit(
            "ada",
            &hold,
            "k",
            json!({"payment_method_id": "pm_card_visa",
        "billing_details": {"name": "Ada", "email": "not-an-email"}}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("invalid_request")));
    let url = app.url(&format!("/api/v1/reservations/{}/commit", hold["reservation_id"].as_str().unwrap()));
    let no_key = app
        .client
        .post(&url)
        .bearer_auth(app.session("ada").await)
        .json(&card("pm_card_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    assert_eq!(app.commit("eve", &hold, "k2", card("pm_card_visa")).await.0, 404, "another buyer's hold");
    assert_eq!(charges(&app).await, (0, 0));
}

pub(crate) fn healthy_provider(app: &TestApp) -> Payments {
    Payments {
        provider: Arc::new(SandboxProvider::new(app.ledger.clone(), SandboxFaults::default())),
        beginnings: Beginnings::start(WarmPool::new(app.db.clone()), Beginning),
        bookings: Bookings::start(WarmPool::new(app.db.clone()), Booking),
        ticket_secret: TEST_TICKET_SECRET.into(),
        webhook_secret: TEST_WEBHOOK_SECRET.into(),
    }
}

#[tokio::test]
async fn a_crash_between_charge_and_order_is_reconciled_without_a_second_charge() {
    // The provider records the charge but its answer never arrives.
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, hold) = held(&app, "ada", 2).await;
    let (status, body) = app.commit("ada", &hold, "k", card("pm_card_visa")).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("payment_pending")));
    assert_eq!(charges(&app).await, (1, 0), "charged, but no order yet");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 0);

    let settled =
        reconcile(&WarmPool::new(app.db.clone()), &healthy_provider(&app), Duration::ZERO).await.unwrap();
    assert_eq!(settled, 1);
    let (status, order) = app.commit("ada", &hold, "k", card("pm_card_visa")).await;
    assert_eq!(status, 200, "the retry sees the reconciled order: {order}");
    assert_eq!(order["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(charges(&app).await, (1, 0), "still exactly one charge");
    assert_consistent(&app, &event).await;
}

#[tokio::test]
async fn a_payment_for_seats_sold_meanwhile_is_refunded() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, hold) = held(&app, "ada", 1).await;
    assert_eq!(app.commit("ada", &hold, "k", card("pm_card_visa")).await.0, 503);
    // Ada's hold lapses while her payment is unconfirmed, and Bob buys the seat.
    app.expire(&hold).await;
    let seat = hold["seats"][0]["seat_id"].clone();
    let (status, _) =
        app.hold("bob", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seat]})).await;
    assert_eq!(status, 201);

    reconcile(&WarmPool::new(app.db.clone()), &healthy_provider(&app), Duration::ZERO).await.unwrap();
    let (status, body) = app.commit("ada", &hold, "k", card("pm_card_visa")).await;
    assert_eq!(
        (status, body["error"].as_str(), body["refunded"].as_bool()),
        (410, Some("reservation_expired"), Some(true))
    );
    assert_eq!(charges(&app).await, (0, 1), "the charge was refunded");
    let status: String = sqlx::query_scalar("SELECT status FROM payments").fetch_one(&app.db).await.unwrap();
    assert_eq!(status, "refunded");
    assert_consistent(&app, &event).await;
}

/// A buyer's own lapsed hold stops counting against their limit when they
/// hold again (the new hold expires it), unless a payment for it is
/// pending: then the payment's outcome decides, and it keeps counting.
#[tokio::test]
async fn a_buyers_lapsed_hold_stops_counting_against_their_limit_unless_its_payment_is_pending() {
    // Every charge's answer is lost: a commit leaves its payment pending.
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, seats) =
        event_with_seats(&app, 1, json!({"max_tickets_per_order": 1, "max_tickets_per_buyer": 2})).await;
    let hold = |seat: usize| {
        app.hold("ada", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[seat]]}))
    };
    let status_of = |hold: &Value| {
        sqlx::query_scalar::<_, String>("SELECT status FROM reservations WHERE id = $1::text::uuid")
            .bind(hold["reservation_id"].as_str().unwrap().to_owned())
            .fetch_one(&app.db)
    };

    let (_, paying) = hold(0).await;
    assert_eq!(app.commit("ada", &paying, "k", card("pm_card_visa")).await.0, 503);
    app.expire(&paying).await;
    let (status, lapsing) = hold(1).await;
    assert_eq!(status, 201, "{lapsing}");
    app.expire(&lapsing).await;

    let (status, third) = hold(2).await;
    assert_eq!(status, 201, "the lapsed hold without a payment no longer counts: {third}");
    assert_eq!(status_of(&lapsing).await.unwrap(), "expired");
    assert_eq!(status_of(&paying).await.unwrap(), "held", "its pending payment decides");
    let (status, body) = hold(3).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("limit_exceeded")), "the pending one counts");
}

async fn send_webhook(
    app: &TestApp,
    provider: &str,
    event: &Value,
    signed_at: i64,
    secret: &[u8],
) -> (u16, Value) {
    let body = event.to_string();
    let signature = origin_inventory::signatures::sign(secret, signed_at, body.as_bytes());
    let response = app
        .client
        .post(app.url(&format!("/webhooks/payments/{provider}")))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The provider's `payment_intent.succeeded` event for the one payment
/// whose answer was lost, as the provider would send it.
async fn succeeded_webhook(app: &TestApp, id: &str) -> Value {
    let payment: Uuid = sqlx::query_scalar("SELECT id FROM payments").fetch_one(&app.db).await.unwrap();
    let charge: String = sqlx::query_scalar("SELECT id FROM sandbox_charges WHERE idempotency_key = $1")
        .bind(payment.to_string())
        .fetch_one(&app.ledger)
        .await
        .unwrap();
    json!({"id": id, "type": "payment_intent.succeeded",
        "data": {"object": {"id": charge, "metadata": {"payment_id": payment}}}})
}

#[tokio::test]
async fn a_signed_webhook_settles_a_pending_payment_once() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (_, hold) = held(&app, "ada", 1).await;
    assert_eq!(app.commit("ada", &hold, "k", card("pm_card_visa")).await.0, 503);
    let event = succeeded_webhook(&app, "evt_1").await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        send_webhook(&app, "sandbox", &event, now, TEST_WEBHOOK_SECRET).await,
        (200, json!({"received": true}))
    );
    let (status, replay) = send_webhook(&app, "sandbox", &event, now, TEST_WEBHOOK_SECRET).await;
    assert_eq!((status, replay["duplicate"].as_bool()), (200, Some(true)));
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 1);
    let (status, order) = app.commit("ada", &hold, "k", card("pm_card_visa")).await;
    assert_eq!((status, order["tickets"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(charges(&app).await, (1, 0));
}

#[tokio::test]
async fn webhooks_with_bad_or_stale_signatures_are_refused() {
    let app = spawn_app().await;
    let event = json!({"id": "evt_2", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_x", "metadata": {"payment_id": Uuid::new_v4()}}}});
    let now = chrono::Utc::now().timestamp();
    let (status, body) = send_webhook(&app, "sandbox", &event, now, b"not-the-secret").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("signature_invalid")));
    let (status, body) = send_webhook(&app, "sandbox", &event, now - 3600, TEST_WEBHOOK_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("signature_invalid")));
    assert!(body["message"].as_str().unwrap().contains("tolerance"));
    assert_eq!(send_webhook(&app, "paypal", &event, now, TEST_WEBHOOK_SECRET).await.0, 404);
    let unsigned =
        app.client.post(app.url("/webhooks/payments/sandbox")).body(event.to_string()).send().await.unwrap();
    assert_eq!(unsigned.status(), 400);
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events").fetch_one(&app.db).await.unwrap();
    assert_eq!(recorded, 0);
}

/// A charge whose answer was lost is settled three ways at once: the
/// buyer retries (same key), the reconciler runs, the provider's webhook
/// arrives. One order, one charge, and the retry gets that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_the_reconciler_and_the_webhook_racing_settle_one_order() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, hold) = held(&app, "ada", 2).await;
    assert_eq!(app.commit("ada", &hold, "k", card("pm_card_visa")).await.0, 503);
    let webhook = succeeded_webhook(&app, "evt_race").await;
    let now = chrono::Utc::now().timestamp();
    let payments = healthy_provider(&app);
    let db = WarmPool::new(app.db.clone());
    let (retry, reconciled, hooked) = tokio::join!(
        app.commit("ada", &hold, "k", card("pm_card_visa")),
        reconcile(&db, &payments, Duration::ZERO),
        send_webhook(&app, "sandbox", &webhook, now, TEST_WEBHOOK_SECRET),
    );
    reconciled.unwrap();
    assert_eq!(hooked.0, 200, "{hooked:?}");
    // The retry saw the order, or the payment still in flight (pending at
    // the provider, or being settled by the reconciler right then).
    match retry {
        (200, order) => assert_eq!(order["tickets"].as_array().unwrap().len(), 2),
        (status, body) => assert!(
            matches!(
                (status, body["error"].as_str()),
                (503, Some("payment_pending")) | (409, Some("commit_in_progress"))
            ),
            "{status} {body}"
        ),
    }
    let (status, order) = app.commit("ada", &hold, "k", card("pm_card_visa")).await;
    assert_eq!(status, 200, "settled by now: {order}");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 1);
    assert_eq!(charges(&app).await, (1, 0), "one charge, none refunded");
    assert_consistent(&app, &event).await;
}
