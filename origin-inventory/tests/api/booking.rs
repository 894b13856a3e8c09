//! Paid orders booked together (`booking`): the orders waiting while a
//! lane is busy go in its next call, one transaction, and each keeps the
//! outcome it would have had alone.

use std::time::Duration;

use origin_inventory::batches::{Batches, Step};
use origin_inventory::booking::{Booked, Booking, Bookings, PaidOrder, PaidTicket};
use origin_inventory::payments::SandboxFaults;
use origin_inventory::test_support::TEST_TICKET_SECRET;
use origin_inventory::tickets::{order_number, ticket_code};
use origin_inventory::warm::WarmPool;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::checkout::card;
use crate::helpers::{TestApp, spawn_app_with_faults};
use crate::holds::{assert_consistent, event_with_seats};

/// The order a pending payment's hold makes, as the origin would number it.
async fn paid_order(app: &TestApp, payment: Uuid) -> PaidOrder {
    let (event, seats): (Uuid, Vec<(Uuid, i64)>) = {
        let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
            "SELECT r.event_id, s.seat_id, s.price_cents
             FROM payments p JOIN reservations r ON r.id = p.reservation_id
             JOIN reservation_seats s ON s.reservation_id = r.id
             WHERE p.id = $1",
        )
        .bind(payment)
        .fetch_all(&app.db)
        .await
        .unwrap();
        (rows[0].0, rows.iter().map(|&(_, seat, price)| (seat, price)).collect())
    };
    PaidOrder {
        payment,
        provider_payment_id: format!("pi_{}", payment.simple()),
        order: Uuid::new_v4(),
        number: order_number(),
        secret: Uuid::new_v4().simple().to_string(),
        created_at: chrono::Utc::now(),
        tickets: seats
            .into_iter()
            .map(|(seat, price_cents)| {
                let id = Uuid::new_v4();
                PaidTicket { id, seat, price_cents, code: ticket_code(TEST_TICKET_SECRET, id, event, seat) }
            })
            .collect(),
        answer: json!({"paid": payment}),
        notifications: json!([{"kind": "webhook.order.created", "payload": {"payment": payment}}]),
    }
}

/// `buyers` buyers each holding one seat of a new event, their payments
/// pending (every charge's answer is lost): the event, its seats, the
/// holds and the payments, in the buyers' order.
async fn pending_payments(app: &TestApp, buyers: usize) -> (String, Vec<String>, Vec<Value>, Vec<Uuid>) {
    let (event, seats) = event_with_seats(app, 1, json!({})).await;
    let mut holds = Vec::new();
    let mut payments = Vec::new();
    for (n, seat) in seats[..buyers].iter().enumerate() {
        let buyer = format!("buyer-{n}");
        let (status, hold) = app
            .hold(&buyer, &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seat]}))
            .await;
        assert_eq!(status, 201, "{hold}");
        assert_eq!(app.commit(&buyer, &hold, "k", card("pm_card_visa")).await.0, 503);
        let payment: Uuid =
            sqlx::query_scalar("SELECT id FROM payments WHERE reservation_id = $1::text::uuid")
                .bind(hold["reservation_id"].as_str())
                .fetch_one(&app.db)
                .await
                .unwrap();
        holds.push(hold);
        payments.push(payment);
    }
    (event, seats, holds, payments)
}

/// The booking lane, busy with the first of `orders` (its payment locked)
/// while the others arrive; then what became of each.
async fn booked_behind_the_first(app: &TestApp, orders: Vec<PaidOrder>) -> Vec<Result<Booked, sqlx::Error>> {
    let bookings = Bookings::start(WarmPool::new(app.db.clone()), Booking);
    let locked = orders[0].payment;
    run_behind_the_first(app, &bookings, ("payments", locked), orders).await
}

/// `lane`, busy with the first of `requests` (waiting for the row `locked`
/// names, which another transaction holds) while the others arrive; then
/// what became of each, in the requests' order.
pub async fn run_behind_the_first<S: Step>(
    app: &TestApp,
    lane: &Batches<S>,
    locked: (&str, Uuid),
    requests: Vec<S::Request>,
) -> Vec<Result<S::Outcome, sqlx::Error>> {
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query(&format!("SELECT 1 FROM {} WHERE id = $1 FOR UPDATE", locked.0))
        .bind(locked.1)
        .execute(&mut *lock)
        .await
        .unwrap();
    let mut requests = requests.into_iter();
    let first = tokio::spawn({
        let (lane, request) = (lane.clone(), requests.next().unwrap());
        async move { lane.run(request).await }
    });
    wait_for_a_lock_wait(app).await;
    let others: Vec<_> = requests
        .map(|request| {
            let lane = lane.clone();
            tokio::spawn(async move { lane.run(request).await })
        })
        .collect();
    // Give every other request time to queue before the lane is free.
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.rollback().await.unwrap();
    let mut outcomes = vec![first.await.unwrap()];
    for other in others {
        outcomes.push(other.await.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn orders_waiting_together_are_booked_in_one_transaction_each_with_its_own_outcome() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, seats, holds, payments) = pending_payments(&app, 5).await;
    // The last buyer's hold lapses while the card is charged, and Bob takes its seat.
    app.expire(&holds[4]).await;
    let (status, _) = app
        .hold("bob", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[4]]}))
        .await;
    assert_eq!(status, 201);

    // The first buyer's order, then the other four, and the first again (a
    // retry racing it).
    let mut orders = Vec::new();
    for &payment in payments.iter().chain(&payments[..1]) {
        orders.push(paid_order(&app, payment).await);
    }
    let outcomes: Vec<Booked> =
        booked_behind_the_first(&app, orders).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [
            Booked::Booked,
            Booked::Booked,
            Booked::Booked,
            Booked::Booked,
            Booked::HoldLost,
            Booked::NotPending
        ],
        "buyers 0-3 booked, buyer 4's hold lost, buyer 0's retry finds it booked"
    );
    // Buyers 1-3 in one transaction, after buyer 0's.
    let writers: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT payment_id, xmin::text FROM orders WHERE payment_id = ANY($1) ORDER BY created_at",
    )
    .bind(&payments)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let xmin = |n: usize| writers.iter().find(|(p, _)| *p == payments[n]).map(|(_, x)| x.clone());
    assert_eq!(writers.len(), 4, "an order for each booked payment: {writers:?}");
    assert!(xmin(1) == xmin(2) && xmin(2) == xmin(3), "booked together: {writers:?}");
    assert_ne!(xmin(0), xmin(1));
    // The lost hold's payment is left for the origin to refund: nothing written.
    let (status, orders): (String, i64) = sqlx::query_as(
        "SELECT p.status, (SELECT count(*) FROM orders o WHERE o.payment_id = p.id) FROM payments p WHERE p.id = $1",
    )
    .bind(payments[4])
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), orders), ("pending", 0));
    let notified: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'webhook.order.created'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(notified, 4, "one notification per booked order, none for the lost hold or the retry");
    assert_consistent(&app, &event).await;
}

/// Until some backend of `app`'s database waits for a row lock.
async fn wait_for_a_lock_wait(app: &TestApp) {
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing waited for the locked row");
}

/// A call that fails as a whole is retried order by order: only the order
/// that broke it fails.
#[tokio::test]
async fn an_order_that_fails_fails_alone() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, _, _, payments) = pending_payments(&app, 3).await;
    let mut orders = Vec::new();
    for &payment in &payments {
        orders.push(paid_order(&app, payment).await);
    }
    // The third order's number is the second's: it cannot be written.
    orders[2].number = orders[1].number.clone();
    let outcomes = booked_behind_the_first(&app, orders).await;
    assert_eq!(outcomes[0].as_ref().unwrap(), &Booked::Booked);
    assert_eq!(outcomes[1].as_ref().unwrap(), &Booked::Booked, "not failed by the third");
    let error = outcomes[2].as_ref().unwrap_err();
    assert!(error.to_string().contains("orders_order_number_key"), "{error}");
    let paid: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM payments WHERE status = 'succeeded' ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let mut expected = payments[..2].to_vec();
    expected.sort();
    assert_eq!(paid, expected, "the third is still pending, for the reconciler");
    assert_consistent(&app, &event).await;
}

/// A payment some other transaction keeps locked holds up its own order
/// for the lock's timeout, and no other: the lane gives up on the call and
/// books the others without it.
#[tokio::test]
async fn a_payment_locked_elsewhere_holds_up_no_other_order() {
    let app = spawn_app_with_faults(SandboxFaults { timeout_rate: 1.0, ..Default::default() }).await;
    let (event, _, _, payments) = pending_payments(&app, 2).await;
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE")
        .bind(payments[0])
        .execute(&mut *lock)
        .await
        .unwrap();
    let bookings = Bookings::start(WarmPool::new(app.db.clone()), Booking);
    let (first, second) = (paid_order(&app, payments[0]).await, paid_order(&app, payments[1]).await);
    let both = async { tokio::join!(bookings.run(first), bookings.run(second)) };
    let (first, second) = tokio::time::timeout(Duration::from_secs(30), both)
        .await
        .expect("the locked payment stalled the lane");
    lock.rollback().await.unwrap();
    assert_eq!(second.unwrap(), Booked::Booked);
    let error = first.unwrap_err();
    assert!(error.to_string().contains("lock timeout"), "{error}");
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE id = ANY($1) ORDER BY id = $2")
            .bind(&payments)
            .bind(payments[1])
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(statuses, ["pending", "succeeded"], "the locked one is left for the reconciler");
    assert_consistent(&app, &event).await;
}
