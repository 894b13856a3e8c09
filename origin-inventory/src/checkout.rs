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

use axum::http::StatusCode;
use chrono::Utc;
use queue_tokens::AccessClaims;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::GateCheck;
use crate::beginning::{PaymentAsk, PendingPayment, begin_together};
use crate::error::ApiError;
use crate::payments::Payments;
use crate::reservations::{HoldStatus, expire_lapsed};
use crate::settlement::{Answer, IN_FLIGHT_WINDOW, drive};
use crate::warm::WarmPool;

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

/// An earlier request for the same hold with the same `Idempotency-Key`
/// (a key names a payment of one hold: migration 0025).
struct EarlierAttempt {
    id: Uuid,
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
    /// The waiting-room session the order ends when the payment succeeds
    /// (migration 0013); none for a buyer session.
    pub session: Option<&'a AccessClaims>,
}

/// `POST /api/v1/reservations/{id}/commit`.
pub async fn commit(
    db: &WarmPool,
    payments: &Payments,
    request: &CommitRequest<'_>,
) -> Result<Answer, ApiError> {
    request.body.validate().map_err(ApiError::invalid)?;
    if let Some(payment) = begin_warm(payments, request, GateCheck::Passed).await? {
        return drive(db, payments, payment).await;
    }
    match begin(db, payments, request).await? {
        Begin::Replay(answer) => Ok(answer),
        Begin::Charge(payment) => drive(db, payments, payment).await,
    }
}

/// [`commit`] with the gate left to the statement (`gate` is not
/// [`GateCheck::Passed`]): answered if the hold is the buyer's, live, and
/// the gate open to the buyer; `None` for everything else, which the
/// checkout gate must decide first.
pub async fn commit_at_once(
    db: &WarmPool,
    payments: &Payments,
    request: &CommitRequest<'_>,
    gate: GateCheck<'_>,
) -> Result<Option<Answer>, ApiError> {
    if request.body.validate().is_err() {
        return Ok(None);
    }
    match begin_warm(payments, request, gate).await? {
        Some(payment) => drive(db, payments, payment).await.map(Some),
        None => Ok(None),
    }
}

/// The usual first attempt, with every other request waiting (one call of
/// `begin_payments`, migration 0028): a live hold of this buyer gets its
/// pending payment. Anything else (a retried key, a lapsed hold, a payment
/// already live, a concurrent release) writes nothing here and is answered
/// by [`begin`]. The hold's row is locked as in [`begin`], so a release or
/// the sweeper either waits for this payment or wins first. It is found by
/// its key alone and checked after: with its state in the lookup, Postgres
/// may scan every live hold to find it (migration 0016).
async fn begin_warm(
    payments: &Payments,
    request: &CommitRequest<'_>,
    gate: GateCheck<'_>,
) -> Result<Option<PendingPayment>, sqlx::Error> {
    payments.beginnings.run(payment_ask(payments, request, gate)).await
}

/// The payment `request` would begin, with the gate the statement checks.
fn payment_ask(payments: &Payments, request: &CommitRequest<'_>, gate: GateCheck<'_>) -> PaymentAsk {
    let (admitted_event, admitted_session) = gate.admitted();
    let CommitRequest { reservation, buyer, key, body, session } = *request;
    PaymentAsk {
        payment: crate::ids::time_ordered(),
        reservation,
        key: key.to_owned(),
        request_hash: body.fingerprint(reservation),
        provider: payments.provider.name().to_owned(),
        payment_method: body.payment_method_id.trim().to_owned(),
        billing_name: body.billing_details.name.trim().to_owned(),
        billing_email: body.billing_details.email.trim().to_owned(),
        buyer: buyer.to_owned(),
        unqueued: gate.unqueued(),
        admitted_session: admitted_session.map(str::to_owned),
        admitted_event,
        session: session.map(|s| s.jti.clone()),
        session_expires_at: session.map(|s| s.exp as f64),
    }
}

async fn begin(db: &PgPool, payments: &Payments, request: &CommitRequest<'_>) -> Result<Begin, ApiError> {
    let CommitRequest { reservation, buyer, key, body, .. } = *request;
    let fingerprint = body.fingerprint(reservation);
    let mut tx = db.begin().await?;
    // Serializes every commit of this reservation, whatever its key.
    // Found by its key alone, as `reservations::extend` explains.
    let held = sqlx::query!(
        r#"SELECT buyer_id, status AS "status: HoldStatus", expires_at, event_id FROM reservations
           WHERE id = $1 FOR UPDATE"#,
        reservation,
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|held| held.buyer_id == buyer)
    .ok_or_else(|| ApiError::not_found("reservation"))?;
    let (status, expires_at, event) = (held.status, held.expires_at, held.event_id);

    let earlier = sqlx::query_as!(
        EarlierAttempt,
        r#"SELECT id, request_hash, response_status, response_body,
                  updated_at < now() - make_interval(secs => $3) AS "stale!"
           FROM payments WHERE reservation_id = $1 AND idempotency_key = $2"#,
        reservation,
        key,
        IN_FLIGHT_WINDOW.as_secs_f64(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(earlier) = earlier {
        if earlier.request_hash != fingerprint {
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
            sqlx::query_scalar!("SELECT order_number FROM orders WHERE reservation_id = $1", reservation)
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
    let live = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payments WHERE reservation_id = $1 AND status IN ('pending', 'succeeded'))
           AS "live!""#,
        reservation,
    )
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
    let payment = begin_together(&mut *tx, &[&payment_ask(payments, request, GateCheck::Passed)])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a live, locked hold took no payment"))?;
    tx.commit().await?;
    Ok(Begin::Charge(payment))
}

/// Takes over a pending payment its request abandoned.
async fn touch(tx: &mut PgConnection, id: Uuid) -> Result<PendingPayment, ApiError> {
    sqlx::query!("UPDATE payments SET updated_at = now() WHERE id = $1", id).execute(&mut *tx).await?;
    PendingPayment::read(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("a stale payment is not pending"))
}

/// The answer saved for this very request (same key, reservation and body)
/// of this buyer: a request naming another buyer's hold hears nothing, as
/// it would from a live session.
pub async fn saved_answer(
    db: &PgPool,
    reservation: Uuid,
    buyer: &str,
    key: &str,
    body: &CommitBody,
) -> Result<Option<Answer>, ApiError> {
    let saved = sqlx::query!(
        r#"SELECT p.response_status AS "status!", p.response_body AS "body!"
           FROM payments p JOIN reservations r ON r.id = p.reservation_id
           WHERE p.reservation_id = $2 AND p.idempotency_key = $1 AND p.request_hash = $3 AND r.buyer_id = $4
             AND p.response_status IS NOT NULL AND p.response_body IS NOT NULL"#,
        key,
        reservation,
        body.fingerprint(reservation),
        buyer,
    )
    .fetch_optional(db)
    .await?;
    saved.map(|saved| Answer::saved(saved.status, saved.body)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

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
