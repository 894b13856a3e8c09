//! Pending payments begun together: the commit's first step, in calls of
//! `begin_payments` (migration 0028) for every request waiting
//! (`batches`). Each request keeps its own outcome: its hold is locked and
//! checked on its own, and only a request that passes gets a payment.

use std::collections::HashMap;

use sqlx::types::Json;
use uuid::Uuid;

use crate::batches::{Batches, Step};
use crate::reservations::HeldSeat;
use crate::warm::WarmPool;

/// A pending payment with everything settling it needs; none of it changes
/// once the payment exists. Read with it (migration 0009), never again.
pub struct PendingPayment {
    pub(crate) id: Uuid,
    pub(crate) reservation_id: Uuid,
    pub(crate) event_id: Uuid,
    pub(crate) buyer_id: String,
    pub(crate) amount_cents: i64,
    pub(crate) currency: String,
    pub(crate) payment_method: String,
    pub(crate) billing_name: String,
    pub(crate) billing_email: String,
    pub(crate) seats: Json<Vec<HeldSeat>>,
}

impl PendingPayment {
    /// The payment if it is still pending.
    pub async fn read(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Self>, sqlx::Error> {
        sqlx::query_as!(
            PendingPayment,
            r#"SELECT id AS "id!", reservation_id AS "reservation_id!", event_id AS "event_id!",
                      buyer_id AS "buyer_id!", amount_cents AS "amount_cents!", currency AS "currency!",
                      payment_method AS "payment_method!", billing_name AS "billing_name!",
                      billing_email AS "billing_email!", seats AS "seats!: Json<Vec<HeldSeat>>"
               FROM pending_payment($1)"#,
            id,
        )
        .fetch_optional(db)
        .await
    }
}

/// A commit request as its payment would be written: the payment's id, the
/// hold, the request's key and fingerprint, how it pays, and the gate the
/// statement must find open (`access::GateCheck`).
pub struct PaymentAsk {
    pub payment: Uuid,
    pub reservation: Uuid,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub provider: String,
    pub payment_method: String,
    pub billing_name: String,
    pub billing_email: String,
    pub buyer: String,
    pub unqueued: bool,
    pub admitted_session: Option<String>,
    pub admitted_event: Option<Uuid>,
    /// The waiting-room session the order will end, and when it expires.
    pub session: Option<String>,
    pub session_expires_at: Option<f64>,
}

/// The beginning step's lane. Its calls lock holds in reservation order;
/// a booking locks them in payment order (migration 0027), so the two can
/// deadlock when both take the same two holds (a begin retried for holds
/// already paying). Postgres ends one call; its lane retries its requests
/// one by one, so nothing is lost but a second's wait.
pub type Beginnings = Batches<Beginning>;

pub struct Beginning;

impl Step for Beginning {
    type Request = PaymentAsk;
    /// The pending payment, or none when the hold is not this buyer's, not
    /// live, already paying, or the gate is shut to the request.
    type Outcome = Option<PendingPayment>;
    /// Two requests for one hold never share a call.
    type Key = Uuid;

    fn key(ask: &PaymentAsk) -> Uuid {
        ask.reservation
    }

    async fn call(
        &self,
        db: &WarmPool,
        asks: &[&PaymentAsk],
    ) -> Result<Vec<Option<PendingPayment>>, sqlx::Error> {
        let mut connection = db.acquire().await?;
        let begun = begin_together(&mut *connection, asks).await;
        connection.keep_if_answered(&begun);
        let mut by_hold: HashMap<Uuid, PendingPayment> =
            begun?.into_iter().map(|payment| (payment.reservation_id, payment)).collect();
        Ok(asks.iter().map(|ask| by_hold.remove(&ask.reservation)).collect())
    }
}

/// One call of `begin_payments`: the payments begun, each naming its hold.
pub async fn begin_together(
    db: impl sqlx::PgExecutor<'_>,
    asks: &[&PaymentAsk],
) -> Result<Vec<PendingPayment>, sqlx::Error> {
    sqlx::query_as!(
        PendingPayment,
        r#"SELECT id AS "id!", reservation_id AS "reservation_id!", event_id AS "event_id!",
                  buyer_id AS "buyer_id!", amount_cents AS "amount_cents!", currency AS "currency!",
                  payment_method AS "payment_method!", billing_name AS "billing_name!",
                  billing_email AS "billing_email!", seats AS "seats!: Json<Vec<HeldSeat>>"
           FROM begin_payments($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
        &asks.iter().map(|a| a.payment).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.reservation).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.key.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.request_hash.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.provider.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.payment_method.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.billing_name.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.billing_email.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.buyer.clone()).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.unqueued).collect::<Vec<_>>(),
        &asks.iter().map(|a| a.admitted_session.clone()).collect::<Vec<_>>() as &[Option<String>],
        &asks.iter().map(|a| a.admitted_event).collect::<Vec<_>>() as &[Option<Uuid>],
        &asks.iter().map(|a| a.session.clone()).collect::<Vec<_>>() as &[Option<String>],
        &asks.iter().map(|a| a.session_expires_at).collect::<Vec<_>>() as &[Option<f64>],
    )
    .fetch_all(db)
    .await
}
