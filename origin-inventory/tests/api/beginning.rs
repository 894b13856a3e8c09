//! Pending payments begun together (`beginning`): the commit requests
//! waiting while the lane is busy go in its next call, one transaction,
//! and each keeps the outcome it would have had alone.

use origin_inventory::beginning::{Beginning, Beginnings, PaymentAsk};
use origin_inventory::warm::WarmPool;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::booking::run_behind_the_first;
use crate::helpers::{TestApp, spawn_app};
use crate::holds::{assert_consistent, event_with_seats};

/// `buyers` buyers each holding one seat of a new event: the event and
/// the holds, in the buyers' order.
async fn holds(app: &TestApp, buyers: usize) -> (String, Vec<Value>) {
    let (event, seats) = event_with_seats(app, 1, json!({})).await;
    let mut holds = Vec::new();
    for (n, seat) in seats[..buyers].iter().enumerate() {
        let (status, hold) = app
            .hold(
                &format!("buyer-{n}"),
                &event,
                json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seat]}),
            )
            .await;
        assert_eq!(status, 201, "{hold}");
        holds.push(hold);
    }
    (event, holds)
}

fn hold_id(hold: &Value) -> Uuid {
    hold["reservation_id"].as_str().unwrap().parse().unwrap()
}

/// The payment a commit request for `hold` by its own buyer would begin.
async fn ask(app: &TestApp, hold: &Value) -> PaymentAsk {
    let reservation = hold_id(hold);
    let buyer: String = sqlx::query_scalar("SELECT buyer_id FROM reservations WHERE id = $1")
        .bind(reservation)
        .fetch_one(&app.db)
        .await
        .unwrap();
    PaymentAsk {
        payment: Uuid::new_v4(),
        reservation,
        key: "k".into(),
        request_hash: vec![0],
        provider: "sandbox".into(),
        payment_method: "pm_card_visa".into(),
        billing_name: "Ada Lovelace".into(),
        billing_email: "ada@example.com".into(),
        buyer,
        unqueued: false,
        admitted_session: None,
        admitted_event: None,
        session: None,
        session_expires_at: None,
    }
}

#[tokio::test]
async fn requests_waiting_together_begin_in_one_transaction_each_with_its_own_outcome() {
    let app = spawn_app().await;
    let (event, holds) = holds(&app, 5).await;
    // The last buyer's hold has lapsed; someone else names the third's.
    app.expire(&holds[4]).await;
    let mut asks = Vec::new();
    for hold in &holds {
        asks.push(ask(&app, hold).await);
    }
    let mut intruder = ask(&app, &holds[2]).await;
    intruder.buyer = "mallory".into();
    asks.push(intruder);

    let beginnings = Beginnings::start(WarmPool::new(app.db.clone()), Beginning);
    let locked = hold_id(&holds[0]);
    let outcomes = run_behind_the_first(&app, &beginnings, ("reservations", locked), asks).await;
    let begun: Vec<bool> = outcomes.into_iter().map(|outcome| outcome.unwrap().is_some()).collect();
    assert_eq!(
        begun,
        [true, true, true, true, false, false],
        "the lapsed hold and the intruder begin nothing"
    );

    // Buyers 1-3 in one transaction, after buyer 0's; one payment per hold.
    let writers: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT reservation_id, xmin::text FROM payments WHERE status = 'pending'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let xmin = |n: usize| writers.iter().find(|(r, _)| *r == hold_id(&holds[n])).map(|(_, x)| x.clone());
    assert_eq!(writers.len(), 4, "a payment for each live hold: {writers:?}");
    assert!(xmin(1) == xmin(2) && xmin(2) == xmin(3), "begun together: {writers:?}");
    assert_ne!(xmin(0), xmin(1));
    assert_consistent(&app, &event).await;
}

/// A second request for a hold waits for the next call, where it finds the
/// first's payment live and begins none.
#[tokio::test]
async fn a_hold_asked_twice_at_once_begins_one_payment() {
    let app = spawn_app().await;
    let (event, holds) = holds(&app, 2).await;
    let asks = vec![ask(&app, &holds[0]).await, ask(&app, &holds[1]).await, ask(&app, &holds[1]).await];
    let beginnings = Beginnings::start(WarmPool::new(app.db.clone()), Beginning);
    let outcomes = run_behind_the_first(&app, &beginnings, ("reservations", hold_id(&holds[0])), asks).await;
    let begun: Vec<bool> = outcomes.into_iter().map(|outcome| outcome.unwrap().is_some()).collect();
    assert_eq!(begun, [true, true, false]);
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE reservation_id = $1")
        .bind(hold_id(&holds[1]))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(payments, 1);
    assert_consistent(&app, &event).await;
}
