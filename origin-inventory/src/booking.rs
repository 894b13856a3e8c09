//! Paid orders booked together: the settle's step of the order path, in
//! calls of `book_paid_orders` (migration 0027) for every order waiting
//! (`batches`). Each order keeps its own outcome: the function checks
//! every payment and hold under its own locks and writes only the orders
//! it books.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::batches::{Batches, Step};
use crate::warm::WarmPool;

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

/// The booking step's lane.
pub type Bookings = Batches<Booking>;

pub struct Booking;

impl Step for Booking {
    type Request = PaidOrder;
    type Outcome = Booked;
    type Key = Uuid;

    fn key(order: &PaidOrder) -> Uuid {
        order.payment
    }

    async fn call(&self, db: &WarmPool, orders: &[&PaidOrder]) -> Result<Vec<Booked>, sqlx::Error> {
        let outcomes = book_together(db, orders).await?;
        orders.iter().map(|o| outcomes.get(&o.payment).copied().ok_or(sqlx::Error::RowNotFound)).collect()
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
