//! Settling a payment: once the provider has answered (to the commit
//! request, to a retry, to the reconciler or in a webhook), book the seats
//! and write the order, or record the decline, or refund a charge whose
//! hold was lost meanwhile; and save the answer for replays. Each outcome is
//! written once, under the payment's row lock.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::beginning::PendingPayment;
use crate::booking::{Booked, PaidOrder, PaidTicket};
use crate::error::{ApiError, Problem};
use crate::orders::{OrderStatus, OrderView, TicketView, load_order, order_url, qr_svg_url};
use crate::outbox::notify;
use crate::payments::{ChargeOutcome, ChargeRequest, Payments};
use crate::reservations::{HeldSeat, HoldStatus, end_hold, give_back_quota};
use crate::tickets::{order_number, ticket_code};
use crate::warm::WarmPool;

/// A pending payment older than this is presumed abandoned by its request
/// and may be driven again (at the provider, idempotently).
pub const IN_FLIGHT_WINDOW: Duration = Duration::from_secs(30);

impl PendingPayment {
    fn charge_request(&self) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: self.id.to_string(),
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            payment_method: self.payment_method.clone(),
            description: format!("Stampede reservation {}", self.reservation_id),
        }
    }
}

/// An answer to a commit request, saved for replays.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// An answer as `payments` saved it.
    pub fn saved(status: i32, body: Value) -> Result<Self, ApiError> {
        let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok());
        Ok(Answer {
            status: status.ok_or_else(|| ApiError::internal("a saved answer has no valid status"))?,
            body,
        })
    }

    /// The answer a settled payment recorded (a missing one reads as a 500).
    fn recorded(status: Option<i32>, body: Option<Value>) -> Result<Self, ApiError> {
        Self::saved(status.unwrap_or(500), body.unwrap_or(Value::Null))
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl Answer {
    /// A refusal, saved like any answer.
    fn problem(status: StatusCode, problem: Problem) -> Self {
        Answer { status, body: serde_json::to_value(problem).expect("a problem serializes") }
    }
}

/// Asks the provider and settles on a definite answer.
pub async fn drive(db: &WarmPool, payments: &Payments, payment: PendingPayment) -> Result<Answer, ApiError> {
    match payments.provider.charge(&payment.charge_request()).await {
        Ok(outcome) => settle(db, payments, &payment, outcome).await,
        Err(e) => {
            tracing::warn!(payment = %payment.id, error = %e, "payment outcome unknown; left for reconciliation");
            Ok(Answer::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                Problem::new(
                    "payment_pending",
                    "the payment could not be confirmed yet; retry with the same Idempotency-Key",
                ),
            ))
        }
    }
}

/// The answer a settled payment recorded (a missing one reads as a 500).
async fn recorded_answer(db: &PgPool, payment: Uuid) -> Result<Answer, ApiError> {
    let saved = sqlx::query!("SELECT response_status, response_body FROM payments WHERE id = $1", payment)
        .fetch_one(db)
        .await?;
    Answer::recorded(saved.response_status, saved.response_body)
}

async fn settle(
    db: &WarmPool,
    payments: &Payments,
    p: &PendingPayment,
    outcome: ChargeOutcome,
) -> Result<Answer, ApiError> {
    let payment = p.id;
    let provider_id = match outcome {
        ChargeOutcome::Declined { code, message } => {
            return settle_declined(db, p, &code, &message).await;
        }
        ChargeOutcome::Succeeded { provider_payment_id } => provider_payment_id,
    };
    let order = paid_order(p, &payments.ticket_secret);
    let answer =
        Answer { status: StatusCode::OK, body: serde_json::to_value(&order).map_err(ApiError::internal)? };
    let notifications = json!([
        {"kind": "email.order_confirmed",
         "payload": {"to": p.billing_email, "name": p.billing_name,
                     "order_number": order.order_number, "order_url": order.order_url}},
        {"kind": "webhook.order.created",
         "payload": {"event_id": p.event_id, "order_number": order.order_number,
                     "tickets": order.tickets.len(), "total_cents": p.amount_cents, "currency": p.currency}},
    ]);
    // Booked with whatever other orders are waiting (`booking`), in one
    // statement: no lock is held while the origin is elsewhere, and the
    // payment is checked under lock to be still pending.
    let booked = payments
        .bookings
        .run(PaidOrder {
            payment,
            provider_payment_id: provider_id.clone(),
            order: order.id,
            number: order.order_number.clone(),
            secret: order.secret.clone(),
            created_at: order.created_at,
            tickets: order
                .tickets
                .iter()
                .map(|t| PaidTicket {
                    id: t.ticket_id,
                    seat: t.seat.seat_id,
                    price_cents: t.seat.price_cents,
                    code: t.code.clone(),
                })
                .collect(),
            answer: answer.body.clone(),
            notifications,
        })
        .await?;
    match booked {
        Booked::Booked => Ok(answer),
        // Settled meanwhile by the reconciler or a retry: same answer.
        Booked::NotPending => recorded_answer(db, payment).await,
        // The hold lapsed and someone else took seats while the card was charged.
        Booked::HoldLost => refund_lost_hold(db, payments, payment, &provider_id).await,
    }
}

/// Records a declined charge, once, and tells the buyer.
async fn settle_declined(
    db: &PgPool,
    p: &PendingPayment,
    code: &str,
    message: &str,
) -> Result<Answer, ApiError> {
    let payment = p.id;
    let mut tx = db.begin().await?;
    let saved = sqlx::query!(
        r#"SELECT status AS "status: PaymentStatus", response_status, response_body FROM payments
           WHERE id = $1 FOR UPDATE"#,
        payment,
    )
    .fetch_one(&mut *tx)
    .await?;
    if saved.status != PaymentStatus::Pending {
        return Answer::recorded(saved.response_status, saved.response_body);
    }
    let answer = Answer::problem(
        StatusCode::PAYMENT_REQUIRED,
        Problem::new("payment_failed", message)
            .with("decline_code", code)
            .with("reservation_id", p.reservation_id),
    );
    finish(&mut tx, payment, PaymentStatus::Failed, None, Some(code), &answer).await?;
    notify(
        &mut tx,
        "email.payment_failed",
        json!({"to": p.billing_email, "name": p.billing_name,
        "reservation_id": p.reservation_id, "reason": message}),
    )
    .await?;
    tx.commit().await?;
    Ok(answer)
}

/// Settles a payment from a webhook if it is still pending; a no-op otherwise.
pub async fn settle_pending(
    db: &WarmPool,
    payments: &Payments,
    payment: Uuid,
    outcome: ChargeOutcome,
) -> Result<(), ApiError> {
    if let Some(pending) = PendingPayment::read(&**db, payment).await? {
        settle(db, payments, &pending, outcome).await?;
    }
    Ok(())
}

/// Refunds a charge whose seats are gone, ends the hold, saves the answer.
async fn refund_lost_hold(
    db: &PgPool,
    payments: &Payments,
    payment: Uuid,
    provider_id: &str,
) -> Result<Answer, ApiError> {
    if let Err(e) = payments.provider.refund(provider_id, &format!("refund-{payment}")).await {
        tracing::warn!(%payment, error = %e, "refund failed; left for reconciliation");
        return Ok(Answer::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            Problem::new("payment_pending", "the payment is being reversed"),
        ));
    }
    let mut tx = db.begin().await?;
    let paid =
        sqlx::query!("SELECT reservation_id, billing_email FROM payments WHERE id = $1 FOR UPDATE", payment)
            .fetch_one(&mut *tx)
            .await?;
    let (reservation, email) = (paid.reservation_id, paid.billing_email);
    end_hold(&mut tx, reservation, HoldStatus::Expired).await?;
    let answer = Answer::problem(
        StatusCode::GONE,
        Problem::new(
            "reservation_expired",
            "the hold expired before the payment completed and the seats were sold; the charge was refunded",
        )
        .with("refunded", true),
    );
    finish(&mut tx, payment, PaymentStatus::Refunded, Some(provider_id), Some("hold_lost"), &answer).await?;
    notify(&mut tx, "email.payment_refunded", json!({"to": email, "reservation_id": reservation})).await?;
    tx.commit().await?;
    Ok(answer)
}

/// Where a payment stands (`payments.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Begun: the provider may not have answered yet.
    Pending,
    Succeeded,
    Failed,
    /// Charged, then given back (the hold was lost meanwhile).
    Refunded,
}

async fn finish(
    tx: &mut PgConnection,
    payment: Uuid,
    status: PaymentStatus,
    provider_id: Option<&str>,
    failure: Option<&str>,
    answer: &Answer,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET status = $2, provider_payment_id = coalesce($3, provider_payment_id), failure_code = $4,
                response_status = $5, response_body = $6, updated_at = now()
         WHERE id = $1",
        payment,
        status as PaymentStatus,
        provider_id,
        failure,
        i32::from(answer.status.as_u16()),
        answer.body,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// An organizer's refund of a paid order in full: the provider gives the
/// money back (once, by key), then the tickets are voided, the seats go
/// back on sale and the buyer and the organizer's webhook hear of it.
pub async fn refund_order(
    db: &PgPool,
    payments: &Payments,
    organizer: Uuid,
    number: &str,
) -> Result<OrderView, ApiError> {
    let found = sqlx::query!(
        r#"SELECT o.id, o.payment_id, o.status AS "status: OrderStatus", p.provider_payment_id, o.buyer_email,
                  o.buyer_name
           FROM orders o JOIN events e ON e.id = o.event_id JOIN payments p ON p.id = o.payment_id
           WHERE o.order_number = $1 AND e.organizer_id = $2"#,
        number,
        organizer,
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("order"))?;
    let (order, payment, status, provider_id, email, name) = (
        found.id,
        found.payment_id,
        found.status,
        found.provider_payment_id,
        found.buyer_email,
        found.buyer_name,
    );
    if status != OrderStatus::Paid {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_refunded",
            "this order was already refunded",
        ));
    }
    let provider_id =
        provider_id.ok_or_else(|| ApiError::internal("a paid order without a provider payment"))?;
    // The provider deduplicates on this key, so a retried refund refunds once.
    payments.provider.refund(&provider_id, &format!("refund-order-{order}")).await.map_err(|e| {
        tracing::warn!(%order, error = %e, "refund failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "refund_failed",
            "the payment provider did not confirm the refund; retry",
        )
    })?;

    let mut tx = db.begin().await?;
    let changed =
        sqlx::query!("UPDATE orders SET status = 'refunded' WHERE id = $1 AND status = 'paid'", order,)
            .execute(&mut *tx)
            .await?;
    if changed.rows_affected() == 1 {
        let seats: Vec<(Uuid, Uuid, String)> = sqlx::query!(
            "UPDATE tickets t SET voided = true FROM orders o
             WHERE t.order_id = $1 AND o.id = t.order_id AND NOT t.voided
             RETURNING t.seat_id, t.event_id, o.buyer_id",
            order,
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|voided| (voided.seat_id, voided.event_id, voided.buyer_id))
        .collect();
        if let Some((_, event, buyer)) = seats.first() {
            sqlx::query!(
                "UPDATE inventory SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = version + 1
                 WHERE event_id = $1 AND seat_id = ANY($2) AND status = 'BOOKED'",
                event,
                &seats.iter().map(|(seat, _, _)| *seat).collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
            give_back_quota(&mut tx, *event, buyer, seats.len() as i32).await?;
            sqlx::query!(
                "UPDATE payments SET status = 'refunded', updated_at = now() WHERE id = $1",
                payment,
            )
            .execute(&mut *tx)
            .await?;
            notify(
                &mut tx,
                "email.order_refunded",
                json!({"to": email, "name": name, "order_number": number}),
            )
            .await?;
            notify(&mut tx, "webhook.order.refunded", json!({"event_id": event, "order_number": number}))
                .await?;
        }
    }
    let view = load_order(&mut tx, number).await?.ok_or_else(|| ApiError::not_found("order"))?;
    tx.commit().await?;
    Ok(view)
}

/// Settles payments left `pending` for longer than `older_than` by a crash
/// or a provider timeout. Returns how many were settled.
pub async fn reconcile(db: &WarmPool, payments: &Payments, older_than: Duration) -> Result<usize, ApiError> {
    let stale = sqlx::query_as!(
        PendingPayment,
        r#"SELECT c.id AS "id!", c.reservation_id AS "reservation_id!", c.event_id AS "event_id!",
                  c.buyer_id AS "buyer_id!", c.amount_cents AS "amount_cents!", c.currency AS "currency!",
                  c.payment_method AS "payment_method!", c.billing_name AS "billing_name!",
                  c.billing_email AS "billing_email!", c.seats AS "seats!: Json<Vec<HeldSeat>>"
           FROM (SELECT id FROM payments
                 WHERE status = 'pending' AND updated_at <= now() - make_interval(secs => $1)
                 ORDER BY created_at LIMIT 100) s, pending_payment(s.id) c"#,
        older_than.as_secs_f64(),
    )
    .fetch_all(&**db)
    .await?;
    let mut settled = 0;
    for payment in stale {
        let id = payment.id;
        let answer = drive(db, payments, payment).await?;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::info!(payment = %id, status = answer.status.as_u16(), "reconciled a pending payment");
            settled += 1;
        }
    }
    Ok(settled)
}

pub async fn run_reconciler(
    db: WarmPool,
    payments: Payments,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::workers::every(interval, stop, || async {
        if let Err(e) = reconcile(&db, &payments, IN_FLIGHT_WINDOW).await {
            tracing::warn!(error = ?e, "payment reconciliation failed");
        }
    })
    .await;
}

/// The order a successful charge makes of its hold, as `load_order` will
/// read it back: numbered, with its secret link and a ticket per seat.
fn paid_order(p: &PendingPayment, ticket_secret: &[u8]) -> OrderView {
    let number = order_number();
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let now = Utc::now();
    // Postgres keeps microseconds: the answer shows what is stored.
    let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let tickets = p
        .seats
        .iter()
        .map(|seat| {
            let ticket_id = crate::ids::time_ordered();
            let code = ticket_code(ticket_secret, ticket_id, p.event_id, seat.seat_id);
            TicketView { ticket_id, seat: seat.clone(), qr_svg_url: qr_svg_url(&code), code }
        })
        .collect();
    OrderView {
        id: crate::ids::time_ordered(),
        order_url: order_url(&number, &secret),
        order_number: number,
        status: OrderStatus::Paid,
        event_id: p.event_id,
        reservation_id: p.reservation_id,
        buyer_id: p.buyer_id.clone(),
        name: p.billing_name.clone(),
        email: p.billing_email.clone(),
        total_cents: p.amount_cents,
        currency: p.currency.clone(),
        created_at,
        secret,
        tickets,
    }
}
