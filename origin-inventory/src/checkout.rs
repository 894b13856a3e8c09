//! Committing a hold: charge once, create the order once.
//!
//! 1. In a transaction, record a `pending` payment under the client's
//!    `Idempotency-Key` (and refuse a second live payment for the hold).
//! 2. Charge the provider with our payment id as *its* idempotency key.
//! 3. In a transaction, settle: book the seats, write the order, tickets
//!    and notifications — or record the decline — and save the answer.
//!
//! A crash or timeout between 2 and 3 leaves a `pending` payment; the
//! reconciler (and a retry with the same key) asks the provider again,
//! gets the original answer, and settles. A charge whose seats were lost
//! in the meantime is refunded. Nobody is charged twice, no order is lost.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{Checkout, CommitOf, session_ended, verified_subject};
use crate::app::AppState;
use crate::error::ApiPath;
use crate::error::{ApiError, ApiJson, Problem, sql_refusal};
use crate::metrics::{Operation, Outcome};
use crate::openapi::CheckoutRefusals;
use crate::payments::{ChargeOutcome, ChargeRequest, PaymentProvider};
use crate::reservations::{HeldSeat, HoldStatus, end_hold, expire_lapsed};
use crate::tickets::{order_number, qr_svg, ticket_code};

/// A pending payment older than this is presumed abandoned by its request
/// and may be driven again (at the provider, idempotently).
pub const IN_FLIGHT_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingDetails {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The provider's payment method (`pm_card_visa` and the other test
    /// cards in the sandbox).
    pub payment_method_id: String,
    pub billing_details: BillingDetails,
}

impl CommitBody {
    pub fn validate(&self) -> Result<(), String> {
        let pm = self.payment_method_id.trim();
        if pm.is_empty() || pm.len() > 255 {
            return Err("payment_method_id must be 1 to 255 characters".into());
        }
        let name = self.billing_details.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("billing_details.name must be 1 to 200 characters".into());
        }
        let email = self.billing_details.email.trim();
        let plausible = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.contains(char::is_whitespace);
        if !plausible {
            return Err("billing_details.email must be an email address".into());
        }
        Ok(())
    }

    /// What makes two commit requests "the same" for idempotency.
    pub fn fingerprint(&self, reservation: Uuid) -> Vec<u8> {
        let canonical = json!({"reservation": reservation, "body": self}).to_string();
        Sha256::digest(canonical.as_bytes()).to_vec()
    }
}

/// What the checkout needs besides the database.
#[derive(Clone)]
pub struct Payments {
    pub provider: Arc<dyn PaymentProvider>,
    pub ticket_secret: Arc<[u8]>,
    /// Checks the provider's webhook signatures.
    pub webhook_secret: Arc<[u8]>,
}

/// A pending payment with everything settling it needs; none of it changes
/// once the payment exists. Read with it (migration 0009), never again.
#[derive(sqlx::FromRow)]
struct PendingPayment {
    id: Uuid,
    reservation_id: Uuid,
    event_id: Uuid,
    buyer_id: String,
    amount_cents: i64,
    currency: String,
    payment_method: String,
    billing_name: String,
    billing_email: String,
    seats: sqlx::types::Json<Vec<HeldSeat>>,
}

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

    /// The payment if it is still pending.
    async fn read(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Self>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM pending_payment($1)").bind(id).fetch_optional(db).await
    }
}

/// An answer to a commit request, saved for replays.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// An answer as `payments` saved it.
    fn saved(status: i32, body: Value) -> Result<Self, ApiError> {
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

fn problem(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer { status, body: json!({"error": code, "message": message}) }
}

/// An earlier request with the same `Idempotency-Key`.
#[derive(sqlx::FromRow)]
struct EarlierAttempt {
    id: Uuid,
    reservation_id: Uuid,
    request_hash: Vec<u8>,
    response_status: Option<i32>,
    response_body: Option<Value>,
    /// Pending for longer than [`IN_FLIGHT_WINDOW`].
    stale: bool,
}

enum Begin {
    Replay(Answer),
    Charge(PendingPayment),
}

/// One commit request: which hold, whose, under which `Idempotency-Key`,
/// paid how.
pub struct CommitRequest<'a> {
    pub reservation: Uuid,
    pub buyer: &'a str,
    pub key: &'a str,
    pub body: &'a CommitBody,
}

/// `POST /api/v1/reservations/{id}/commit`.
pub async fn commit(
    db: &PgPool,
    payments: &Payments,
    request: &CommitRequest<'_>,
) -> Result<Answer, ApiError> {
    request.body.validate().map_err(ApiError::invalid)?;
    if let Some(payment) = begin_at_once(db, payments, request).await? {
        return drive(db, payments, payment).await;
    }
    match begin(db, payments, request).await? {
        Begin::Replay(answer) => Ok(answer),
        Begin::Charge(payment) => drive(db, payments, payment).await,
    }
}

/// The usual first attempt, in one statement: a live hold of this buyer
/// gets its pending payment. Anything else (a retried key, a lapsed hold,
/// a payment already live, a concurrent release) writes nothing here and
/// is answered by [`begin`]. The hold's row is locked as in [`begin`], so
/// a release or the sweeper either waits for this payment or wins first.
async fn begin_at_once(
    db: impl sqlx::PgExecutor<'_>,
    payments: &Payments,
    request: &CommitRequest<'_>,
) -> Result<Option<PendingPayment>, sqlx::Error> {
    let CommitRequest { reservation, buyer, key, body } = *request;
    sqlx::query_as(
        "WITH paying AS (
             INSERT INTO payments (id, reservation_id, idempotency_key, request_hash, provider, amount_cents,
                                   currency, payment_method, billing_name, billing_email)
             SELECT $1, r.id, $3, $4, $5, r.total_cents, r.currency, $6, $7, $8
             FROM reservations r
             WHERE r.id = $2 AND r.buyer_id = $9 AND r.status = 'held' AND r.expires_at > now()
             FOR UPDATE
             ON CONFLICT DO NOTHING
             RETURNING id, reservation_id, amount_cents, currency, payment_method, billing_name, billing_email)
         SELECT p.id, p.reservation_id, r.event_id, r.buyer_id, p.amount_cents, p.currency, p.payment_method,
                p.billing_name, p.billing_email, reservation_seats_json(r.id) AS seats
         FROM paying p JOIN reservations r ON r.id = p.reservation_id",
    )
    .bind(Uuid::new_v4())
    .bind(reservation)
    .bind(key)
    .bind(body.fingerprint(reservation))
    .bind(payments.provider.name())
    .bind(body.payment_method_id.trim())
    .bind(body.billing_details.name.trim())
    .bind(body.billing_details.email.trim())
    .bind(buyer)
    .fetch_optional(db)
    .await
}

async fn begin(db: &PgPool, payments: &Payments, request: &CommitRequest<'_>) -> Result<Begin, ApiError> {
    let CommitRequest { reservation, buyer, key, body } = *request;
    let fingerprint = body.fingerprint(reservation);
    let mut tx = db.begin().await?;
    // Serializes every commit of this reservation, whatever its key.
    let held: Option<(HoldStatus, DateTime<Utc>, Uuid)> = sqlx::query_as(
        "SELECT status, expires_at, event_id FROM reservations WHERE id = $1 AND buyer_id = $2 FOR UPDATE",
    )
    .bind(reservation)
    .bind(buyer)
    .fetch_optional(&mut *tx)
    .await?;
    let (status, expires_at, event) = held.ok_or_else(|| ApiError::not_found("reservation"))?;

    let earlier: Option<EarlierAttempt> = sqlx::query_as(
        "SELECT id, reservation_id, request_hash, response_status, response_body,
                updated_at < now() - make_interval(secs => $2) AS stale
         FROM payments WHERE idempotency_key = $1",
    )
    .bind(key)
    .bind(IN_FLIGHT_WINDOW.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(earlier) = earlier {
        if earlier.reservation_id != reservation || earlier.request_hash != fingerprint {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ));
        }
        if let (Some(status), Some(body)) = (earlier.response_status, earlier.response_body) {
            return Ok(Begin::Replay(Answer::saved(status, body)?));
        }
        if !earlier.stale {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "commit_in_progress",
                "this payment is being processed",
            ));
        }
        let payment = touch(&mut tx, earlier.id).await?;
        tx.commit().await?;
        return Ok(Begin::Charge(payment));
    }

    if status == HoldStatus::Committed {
        let number: Option<String> =
            sqlx::query_scalar("SELECT order_number FROM orders WHERE reservation_id = $1")
                .bind(reservation)
                .fetch_optional(&mut *tx)
                .await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_committed",
            "this reservation is already paid",
        )
        .with("order_number", number));
    }
    if status != HoldStatus::Held || expires_at <= Utc::now() {
        if status == HoldStatus::Held {
            // Free the seats now, not at the next sweep: other buyers' seat
            // maps hear of it at once.
            expire_lapsed(&mut tx, Some((event, buyer))).await?;
            tx.commit().await?;
        }
        return Err(ApiError::new(
            StatusCode::GONE,
            "reservation_expired",
            "the hold has expired; hold the seats again",
        ));
    }
    let live: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payments WHERE reservation_id = $1 AND status IN ('pending', 'succeeded'))",
    )
    .bind(reservation)
    .fetch_one(&mut *tx)
    .await?;
    if live {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "commit_in_progress",
            "a payment for this hold is in progress",
        ));
    }
    // The hold is locked and live: the same statement as the first attempt.
    let payment = begin_at_once(&mut *tx, payments, request)
        .await?
        .ok_or_else(|| ApiError::internal("a live, locked hold took no payment"))?;
    tx.commit().await?;
    Ok(Begin::Charge(payment))
}

/// Takes over a pending payment its request abandoned.
async fn touch(tx: &mut PgConnection, id: Uuid) -> Result<PendingPayment, ApiError> {
    sqlx::query("UPDATE payments SET updated_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
    PendingPayment::read(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("a stale payment is not pending"))
}

/// Asks the provider and settles on a definite answer.
async fn drive(db: &PgPool, payments: &Payments, payment: PendingPayment) -> Result<Answer, ApiError> {
    match payments.provider.charge(&payment.charge_request()).await {
        Ok(outcome) => settle(db, payments, &payment, outcome).await,
        Err(e) => {
            tracing::warn!(payment = %payment.id, error = %e, "payment outcome unknown; left for reconciliation");
            Ok(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_pending",
                "the payment could not be confirmed yet; retry with the same Idempotency-Key",
            ))
        }
    }
}

/// The answer a settled payment recorded (a missing one reads as a 500).
async fn recorded_answer(db: &PgPool, payment: Uuid) -> Result<Answer, ApiError> {
    let (status, body): (Option<i32>, Option<Value>) =
        sqlx::query_as("SELECT response_status, response_body FROM payments WHERE id = $1")
            .bind(payment)
            .fetch_one(db)
            .await?;
    Answer::recorded(status, body)
}

async fn settle(
    db: &PgPool,
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
    let order = OrderView::paid(p, &payments.ticket_secret);
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
    // One statement (migration 0007's `settle_paid`): no lock is held
    // while the origin is elsewhere. It checks under lock that the payment
    // is still pending.
    let settled = sqlx::query_scalar("SELECT settle_paid($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(payment)
        .bind(&provider_id)
        .bind(order.id)
        .bind(&order.order_number)
        .bind(&order.secret)
        .bind(order.created_at)
        .bind(order.tickets.iter().map(|t| t.ticket_id).collect::<Vec<_>>())
        .bind(order.tickets.iter().map(|t| t.seat.seat_id).collect::<Vec<_>>())
        .bind(order.tickets.iter().map(|t| t.seat.price_cents).collect::<Vec<_>>())
        .bind(order.tickets.iter().map(|t| t.code.as_str()).collect::<Vec<_>>())
        .bind(&answer.body)
        .bind(&notifications)
        .fetch_one(db)
        .await;
    match settled {
        Ok(true) => Ok(answer),
        // Settled meanwhile by the reconciler or a retry: same answer.
        Ok(false) => recorded_answer(db, payment).await,
        // The hold lapsed and someone else took seats while the card was charged.
        Err(e) if sql_refusal(&e).is_some_and(|(code, _)| code == "SH010") => {
            refund_lost_hold(db, payments, payment, &provider_id).await
        }
        Err(e) => Err(e.into()),
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
    let (status, saved_status, saved_body): (PaymentStatus, Option<i32>, Option<Value>) = sqlx::query_as(
        "SELECT status, response_status, response_body FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(payment)
    .fetch_one(&mut *tx)
    .await?;
    if status != PaymentStatus::Pending {
        return Answer::recorded(saved_status, saved_body);
    }
    let answer = Answer {
        status: StatusCode::PAYMENT_REQUIRED,
        body: json!({"error": "payment_failed", "decline_code": code, "message": message,
                     "reservation_id": p.reservation_id}),
    };
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
    db: &PgPool,
    payments: &Payments,
    payment: Uuid,
    outcome: ChargeOutcome,
) -> Result<(), ApiError> {
    if let Some(pending) = PendingPayment::read(db, payment).await? {
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
        return Ok(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_pending",
            "the payment is being reversed",
        ));
    }
    let mut tx = db.begin().await?;
    let (reservation, email): (Uuid, String) =
        sqlx::query_as("SELECT reservation_id, billing_email FROM payments WHERE id = $1 FOR UPDATE")
            .bind(payment)
            .fetch_one(&mut *tx)
            .await?;
    end_hold(&mut tx, reservation, HoldStatus::Expired).await?;
    let answer = Answer {
        status: StatusCode::GONE,
        body: json!({"error": "reservation_expired", "refunded": true,
            "message": "the hold expired before the payment completed and the seats were sold; the charge was refunded"}),
    };
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

/// Where an order stands (`orders.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum OrderStatus {
    Paid,
    Refunded,
}

impl OrderStatus {
    /// As the order page shows it (the same word as in the API).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
        }
    }
}

async fn finish(
    tx: &mut PgConnection,
    payment: Uuid,
    status: PaymentStatus,
    provider_id: Option<&str>,
    failure: Option<&str>,
    answer: &Answer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = $2, provider_payment_id = coalesce($3, provider_payment_id), failure_code = $4,
                response_status = $5, response_body = $6, updated_at = now()
         WHERE id = $1",
    )
    .bind(payment)
    .bind(status)
    .bind(provider_id)
    .bind(failure)
    .bind(i32::from(answer.status.as_u16()))
    .bind(&answer.body)
    .execute(tx)
    .await?;
    Ok(())
}

/// Queues a notification in the same transaction as the change it announces.
pub async fn notify(tx: &mut PgConnection, kind: &str, payload: Value) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (kind, payload) VALUES ($1, $2)")
        .bind(kind)
        .bind(payload)
        .execute(tx)
        .await?;
    Ok(())
}

/// Settles payments left `pending` for longer than `older_than` by a crash
/// or a provider timeout. Returns how many were settled.
pub async fn reconcile(db: &PgPool, payments: &Payments, older_than: Duration) -> Result<usize, ApiError> {
    let stale: Vec<PendingPayment> = sqlx::query_as(
        "SELECT c.* FROM (SELECT id FROM payments
                          WHERE status = 'pending' AND updated_at <= now() - make_interval(secs => $1)
                          ORDER BY created_at LIMIT 100) s, pending_payment(s.id) c",
    )
    .bind(older_than.as_secs_f64())
    .fetch_all(db)
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
    db: PgPool,
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

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub seat: HeldSeat,
    pub code: String,
    /// Where the QR code of `code` is drawn.
    pub qr_svg_url: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct OrderView {
    #[serde(skip)]
    id: Uuid,
    pub order_number: String,
    pub status: OrderStatus,
    pub event_id: Uuid,
    pub reservation_id: Uuid,
    pub buyer_id: String,
    pub name: String,
    pub email: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    /// Opens the order from any browser, forever: keep it private.
    pub order_url: String,
    #[serde(skip)]
    secret: String,
    #[sqlx(skip)]
    pub tickets: Vec<TicketView>,
}

impl OrderView {
    /// The order a successful charge makes of its hold, as `load_order` will
    /// read it back: numbered, with its secret link and a ticket per seat.
    fn paid(p: &PendingPayment, ticket_secret: &[u8]) -> Self {
        let number = order_number();
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let now = Utc::now();
        // Postgres keeps microseconds: the answer shows what is stored.
        let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let tickets = p
            .seats
            .iter()
            .map(|seat| {
                let ticket_id = Uuid::new_v4();
                let code = ticket_code(ticket_secret, ticket_id, p.event_id, seat.seat_id);
                TicketView {
                    ticket_id,
                    seat: seat.clone(),
                    qr_svg_url: format!("/api/v1/tickets/{code}/qr.svg"),
                    code,
                }
            })
            .collect();
        Self {
            id: Uuid::new_v4(),
            order_url: format!("/orders/{number}/{secret}"),
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
}

pub async fn load_order(db: &mut PgConnection, number: &str) -> Result<Option<OrderView>, sqlx::Error> {
    let order: Option<OrderView> = sqlx::query_as(
        "SELECT id, order_number, status, event_id, reservation_id, buyer_id, buyer_name AS name,
                buyer_email AS email, total_cents, currency, created_at,
                '/orders/' || order_number || '/' || secret AS order_url, secret
         FROM orders WHERE order_number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *db)
    .await?;
    let Some(mut order) = order else { return Ok(None) };
    order.tickets = sqlx::query_as(
        "SELECT t.id AS ticket_id, t.seat_id, sec.name AS section, s.row_label AS row, s.number, pt.name AS tier,
                sec.general_admission,
                t.price_cents, t.code, '/api/v1/tickets/' || t.code || '/qr.svg' AS qr_svg_url
         FROM tickets t JOIN seats s ON s.id = t.seat_id JOIN sections sec ON sec.id = s.section_id
         JOIN price_tiers pt ON pt.id = s.tier_id
         WHERE t.order_id = $1 ORDER BY sec.position, s.row_label, s.number",
    )
    .bind(order.id)
    .fetch_all(&mut *db)
    .await?;
    Ok(Some(order))
}

/// Pay for a hold and turn it into an order with tickets.
///
/// Idempotent by `Idempotency-Key`: the same key and body answer the same
/// result; a pending payment answers `503` until it settles.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/commit", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), request_body = CommitBody,
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "1 to 255 characters, one per payment attempt")),
    responses(
    (status = 200, body = OrderView, description = "The order with its tickets"),
    (status = 400, body = Problem, description = "`idempotency_key_required`"),
    (status = 402, body = Problem, description = "`payment_failed`: the card was declined; the hold stays"),
    (status = 404, body = Problem, description = "Unknown, or another buyer's"),
    (status = 409, body = Problem, description = "`already_committed` or `commit_in_progress`"),
    (status = 410, body = Problem, description = "`reservation_expired`"),
    (status = 422, body = Problem, description = "`invalid_request`, or `idempotency_key_reused` with another body"),
    (status = 503, body = Problem, description = "`payment_pending`: retry with the same key (`Retry-After`)"),
    CheckoutRefusals,
))]
async fn post_commit(
    State(state): State<AppState>,
    checkout: Checkout<CommitOf>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CommitBody>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "send an Idempotency-Key header (1 to 255 characters)",
            )
        })?;
    let (reservation, buyer) = (checkout.target.0, checkout.buyer()?);
    if checkout.session_ended() {
        // The order ended this session; a retry may only hear its answer again.
        return match saved_answer(&state.db, reservation, key, &body).await? {
            Some(answer) => Ok(answer.into_response()),
            None => {
                state.metrics.count(Outcome::AccessEnded);
                Err(session_ended())
            }
        };
    }
    let request = CommitRequest { reservation, buyer, key, body: &body };
    let answer = state
        .metrics
        .observe(Operation::Commit, commit(&state.db, &state.payments, &request), |a| a.status)
        .await?;
    let ended = if answer.status == StatusCode::OK { checkout.end_session(&state.db).await? } else { None };
    Ok((ended, answer).into_response())
}

/// The answer saved for this very request (same key, reservation and body).
async fn saved_answer(
    db: &PgPool,
    reservation: Uuid,
    key: &str,
    body: &CommitBody,
) -> Result<Option<Answer>, ApiError> {
    let saved: Option<(i32, Value)> = sqlx::query_as(
        "SELECT response_status, response_body FROM payments
         WHERE idempotency_key = $1 AND reservation_id = $2 AND request_hash = $3
           AND response_status IS NOT NULL",
    )
    .bind(key)
    .bind(reservation)
    .bind(body.fingerprint(reservation))
    .fetch_optional(db)
    .await?;
    saved.map(|(status, body)| Answer::saved(status, body)).transpose()
}

/// An order for whoever may see it: its buyer (buyer session, or an access
/// token of the order's event naming them, ended or not), or anyone holding
/// its secret link. Anyone else learns nothing, not even that it exists.
pub async fn readable_order(
    state: &AppState,
    number: &str,
    secret: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<OrderView>, ApiError> {
    let mut db = state.db.acquire().await?;
    let Some(order) = load_order(&mut db, number).await? else { return Ok(None) };
    let allowed = match secret {
        Some(secret) => same_secret(secret, &order.secret),
        None => {
            let now = Utc::now().timestamp();
            state.buyers.buyer_of(headers, now).as_deref() == Some(order.buyer_id.as_str())
                || verified_subject(state.access.as_ref(), headers, order.event_id).as_deref()
                    == Some(order.buyer_id.as_str())
        }
    };
    Ok(allowed.then_some(order))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, actual: &str) -> bool {
    given.len() == actual.len()
        && given.bytes().zip(actual.bytes()).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// Your own order with its tickets: a buyer session, or an access token of
/// the order's event naming you.
#[utoipa::path(get, path = "/api/v1/orders/{number}", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("number" = String, Path)), responses(
    (status = 200, body = OrderView),
    (status = 404, body = Problem, description = "Unknown, or not yours"),
))]
async fn get_order(
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    headers: HeaderMap,
) -> Result<ApiJson<OrderView>, ApiError> {
    readable_order(&state, &number, None, &headers)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// An order behind its secret link (`order_url`): no session needed.
#[utoipa::path(get, path = "/api/v1/orders/{number}/{secret}", tag = "checkout",
    params(("number" = String, Path), ("secret" = String, Path)), responses(
    (status = 200, body = OrderView),
    (status = 404, body = Problem, description = "Unknown order or wrong secret"),
))]
async fn get_order_by_link(
    State(state): State<AppState>,
    ApiPath((number, secret)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<ApiJson<OrderView>, ApiError> {
    readable_order(&state, &number, Some(&secret), &headers)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// The QR code of a live ticket: the code is the credential.
#[utoipa::path(get, path = "/api/v1/tickets/{code}/qr.svg", tag = "checkout", params(("code" = String, Path)),
    responses(
    (status = 200, content_type = "image/svg+xml", description = "The code as a QR image"),
    (status = 404, body = Problem, description = "Unknown or voided ticket"),
))]
async fn get_ticket_qr(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    let live: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tickets WHERE code = $1 AND NOT voided)")
            .bind(&code)
            .fetch_one(&state.db)
            .await?;
    if !live {
        return Err(ApiError::not_found("ticket"));
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], qr_svg(&code)).into_response())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_commit))
        .routes(routes!(get_order))
        .routes(routes!(get_order_by_link))
        .routes(routes!(get_ticket_qr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_page_says_the_status_the_api_does() {
        for status in [OrderStatus::Paid, OrderStatus::Refunded] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    fn body(email: &str) -> CommitBody {
        CommitBody {
            payment_method_id: "pm_card_visa".into(),
            billing_details: BillingDetails { name: "Ada".into(), email: email.into() },
        }
    }

    #[test]
    fn billing_details_are_checked() {
        assert!(body("ada@example.com").validate().is_ok());
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "ada@.com"] {
            assert!(body(bad).validate().is_err(), "{bad}");
        }
        let mut no_pm = body("ada@example.com");
        no_pm.payment_method_id = " ".into();
        assert!(no_pm.validate().is_err());
    }

    #[test]
    fn fingerprints_tell_replays_from_different_requests() {
        let r = Uuid::new_v4();
        assert_eq!(body("a@b.co").fingerprint(r), body("a@b.co").fingerprint(r));
        assert_ne!(body("a@b.co").fingerprint(r), body("c@b.co").fingerprint(r));
        assert_ne!(body("a@b.co").fingerprint(r), body("a@b.co").fingerprint(Uuid::new_v4()));
    }
}
