//! Paid orders booked together: group commit for the settle.
//!
//! Every request whose charge succeeded hands its order to the booking
//! lane, which books all the orders waiting when it is free in one call of
//! `book_paid_orders` (migration 0027): one transaction and its eight
//! statements whether it books one order or thirty. When Postgres keeps
//! up, the lane is free as an order arrives and books it alone; when it
//! falls behind, orders queue while the lane works and the next call takes
//! them all, so the statements' and the commit's cost is shared as load
//! rises (README: what it measured).
//!
//! Each order keeps its own outcome: the function checks every payment and
//! hold under its own locks and writes only those it books. A call that
//! fails as a whole (a lost connection, a row locked too long) is retried order by
//! order, so one order's failure is never another's.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::warm::WarmPool;

/// Calls that may run at once. One, as Postgres's own group commit: every
/// order that arrives during a call goes in the next. On the local stack
/// two lanes split the queue into calls of 1.6 orders and settled slower
/// than each order alone; one made calls of 4.8 at 16 buyers and was 7%
/// faster (README).
pub const LANES: usize = 1;

/// The most orders one call books: bounds a transaction's locks and time.
pub const MOST_PER_CALL: usize = 32;

/// A paid order as it will be written: numbered, its tickets signed, its
/// answer and notifications ready.
pub struct PaidOrder {
    pub payment: Uuid,
    pub provider_payment_id: String,
    pub order: Uuid,
    pub number: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub tickets: Vec<PaidTicket>,
    pub answer: Value,
    /// `[{"kind": …, "payload": …}, …]`, queued in the outbox with the order.
    pub notifications: Value,
}

pub struct PaidTicket {
    pub id: Uuid,
    pub seat: Uuid,
    pub price_cents: i64,
    pub code: String,
}

/// What became of one payment's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booked {
    /// Seats booked, order and tickets written, the payment succeeded.
    Booked,
    /// Settled before this call (a retry, the reconciler, a webhook).
    NotPending,
    /// The hold lapsed and some of its seats were taken: nothing written.
    HoldLost,
}

impl Booked {
    fn parse(outcome: &str) -> Result<Self, sqlx::Error> {
        match outcome {
            "booked" => Ok(Booked::Booked),
            "not_pending" => Ok(Booked::NotPending),
            "hold_lost" => Ok(Booked::HoldLost),
            other => Err(sqlx::Error::Protocol(format!("book_paid_orders answered {other:?}"))),
        }
    }
}

struct Waiting {
    order: PaidOrder,
    booked: oneshot::Sender<Result<Booked, sqlx::Error>>,
}

/// The queue to the booking lanes. Clones share it; the lanes end when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Bookings {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Bookings {
    pub fn start(db: WarmPool) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..LANES {
            tokio::spawn(lane(db.clone(), waiting.clone()));
        }
        Self { queue }
    }

    /// Books `order` with whatever else is waiting, and says what became of it.
    pub async fn book(&self, order: PaidOrder) -> Result<Booked, sqlx::Error> {
        let (booked, outcome) = oneshot::channel();
        self.queue.send(Waiting { order, booked }).map_err(|_| sqlx::Error::WorkerCrashed)?;
        outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Takes every order waiting (up to [`MOST_PER_CALL`]) and books them in
/// one call, until the queue closes. With several lanes, one at a time
/// waits on the queue while the others book. A payment already in the batch (a retry
/// racing its first attempt) starts the next batch instead, where it finds
/// itself settled.
async fn lane(db: WarmPool, waiting: Arc<Mutex<mpsc::UnboundedReceiver<Waiting>>>) {
    let mut carried = None;
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let first = match carried.take() {
                Some(first) => first,
                None => match waiting.recv().await {
                    Some(first) => first,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MOST_PER_CALL {
                let Ok(next) = waiting.try_recv() else { break };
                if batch.iter().any(|w: &Waiting| w.order.payment == next.order.payment) {
                    carried = Some(next);
                    break;
                }
                batch.push(next);
            }
            batch
        };
        book_batch(&db, batch).await;
    }
}

async fn book_batch(db: &WarmPool, batch: Vec<Waiting>) {
    let orders: Vec<&PaidOrder> = batch.iter().map(|w| &w.order).collect();
    match book_together(db, &orders).await {
        Ok(outcomes) => {
            for waiting in batch {
                let outcome = outcomes.get(&waiting.order.payment).copied().ok_or(sqlx::Error::RowNotFound);
                // A request that gave up no longer waits for its answer.
                let _ = waiting.booked.send(outcome);
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.into_iter().next().expect("one order").booked.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(orders = batch.len(), error = %e, "booking orders together failed; booking each alone");
            for waiting in batch {
                let outcome = book_together(db, &[&waiting.order]).await.and_then(|outcomes| {
                    outcomes.get(&waiting.order.payment).copied().ok_or(sqlx::Error::RowNotFound)
                });
                let _ = waiting.booked.send(outcome);
            }
        }
    }
}

/// One call of `book_paid_orders`: each payment's outcome.
async fn book_together(db: &WarmPool, orders: &[&PaidOrder]) -> Result<HashMap<Uuid, Booked>, sqlx::Error> {
    let tickets = || orders.iter().flat_map(|o| o.tickets.iter().map(move |t| (o.payment, t)));
    let mut connection = db.acquire().await?;
    let answered = sqlx::query!(
        r#"SELECT payment_id AS "payment!", outcome AS "outcome!"
           FROM book_paid_orders($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
        &orders.iter().map(|o| o.payment).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.provider_payment_id.clone()).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.order).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.number.clone()).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.secret.clone()).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.created_at).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.answer.clone()).collect::<Vec<_>>(),
        &orders.iter().map(|o| o.notifications.clone()).collect::<Vec<_>>(),
        &tickets().map(|(payment, _)| payment).collect::<Vec<_>>(),
        &tickets().map(|(_, t)| t.id).collect::<Vec<_>>(),
        &tickets().map(|(_, t)| t.seat).collect::<Vec<_>>(),
        &tickets().map(|(_, t)| t.price_cents).collect::<Vec<_>>(),
        &tickets().map(|(_, t)| t.code.clone()).collect::<Vec<_>>(),
    )
    .fetch_all(&mut *connection)
    .await;
    connection.keep_if_answered(&answered);
    answered?.into_iter().map(|row| Ok((row.payment, Booked::parse(&row.outcome)?))).collect()
}
