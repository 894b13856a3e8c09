//! Delivering the outbox: notifications were written in the same
//! transaction as the change they announce; this worker sends them (email
//! over SMTP, signed organizer webhooks) and retries with exponential
//! backoff until they get through. Delivery is at least once, and at most
//! one message is sent twice per crash (see [`deliver_due_until`]).

use std::time::Duration;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::signatures::sign;

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Wait before attempt `attempts + 1`: 2, 4, 8 … seconds, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(0, 20) as u32;
    Duration::from_secs(2u64.saturating_pow(exponent + 1)).min(MAX_BACKOFF)
}

/// An email, rendered from an outbox payload.
#[derive(Debug, PartialEq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The email for an `email.*` notification.
pub fn render_email(kind: &str, payload: &Value) -> Option<Email> {
    let to = payload["to"].as_str()?.to_owned();
    let name = payload["name"].as_str().unwrap_or("there");
    let (subject, body) = match kind {
        "email.order_confirmed" => {
            let number = payload["order_number"].as_str()?;
            let link =
                payload["order_url"].as_str().map_or_else(|| format!("/orders/{number}"), str::to_owned);
            (
                format!("Your tickets: order {number}"),
                format!(
                    "Hello {name},\n\nyour order {number} is confirmed. Your tickets are at {link} \
                     (keep this link private: it opens your tickets).\n\nStampede"
                ),
            )
        }
        "email.payment_failed" => (
            "Your payment did not go through".to_owned(),
            format!(
                "Hello {name},\n\nyour payment was declined ({}). Your seats stay held until the hold expires; \
                 you can try another card.\n\nStampede",
                payload["reason"].as_str().unwrap_or("declined")
            ),
        ),
        "email.payment_refunded" | "email.order_refunded" => (
            "Your payment was refunded".to_owned(),
            format!("Hello {name},\n\nwe refunded your payment in full.\n\nStampede"),
        ),
        _ => return None,
    };
    Some(Email { to, subject, body })
}

/// Where notifications go.
#[derive(Clone)]
pub struct Notifier {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    http: reqwest::Client,
}

impl Notifier {
    /// `smtp_url`: `smtp://host:port` (plain, local), `smtp://host?tls=required`, `smtps://host`.
    pub fn new(smtp_url: &str, from: &str) -> anyhow::Result<Self> {
        let mailer =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?.timeout(Some(SEND_TIMEOUT)).build();
        let http = reqwest::Client::builder().timeout(SEND_TIMEOUT).build()?;
        Ok(Self { mailer, from: from.parse()?, http })
    }

    async fn deliver(&self, db: &PgPool, id: i64, kind: &str, payload: &Value) -> Result<(), String> {
        let key = message_key(id, kind, payload);
        if let Some(kind) = kind.strip_prefix("webhook.") {
            return self.post_webhook(db, &key, kind, payload).await;
        }
        let email = render_email(kind, payload).ok_or_else(|| format!("cannot render {kind}"))?;
        let message = Message::builder()
            .message_id(Some(format!("<{key}@{}>", self.from.email.domain())))
            .from(self.from.clone())
            .to(email.to.parse().map_err(|e| format!("bad recipient: {e}"))?)
            .subject(email.subject)
            .body(email.body)
            .map_err(|e| e.to_string())?;
        self.mailer.send(message).await.map(drop).map_err(|e| e.to_string())
    }

    /// Posts to the organizer's webhook URL, signed like Stripe's, with the
    /// message's stable id as `webhook-id` and `id` (receivers deduplicate).
    async fn post_webhook(&self, db: &PgPool, key: &str, kind: &str, payload: &Value) -> Result<(), String> {
        let event = payload["event_id"]
            .as_str()
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
            .ok_or("no event_id")?;
        let target: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT o.webhook_url, o.webhook_secret FROM events e JOIN organizers o ON o.id = e.organizer_id WHERE e.id = $1",
        )
        .bind(event)
        .fetch_optional(db)
        .await
        .map_err(|e| e.to_string())?;
        let Some((Some(url), Some(secret))) = target else {
            return Ok(()); // no webhook configured: nothing to deliver
        };
        let body = json!({"id": key, "type": kind, "created_at": Utc::now(), "data": payload}).to_string();
        let signature = sign(secret.as_bytes(), Utc::now().timestamp(), body.as_bytes());
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("stampede-signature", signature)
            .header("webhook-id", key)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", response.status()))
        }
    }
}

/// How long claimed messages are their sender's alone, by default. An
/// instance that dies mid-send loses its claims to the others once this
/// has passed. A message is only sent in the first half of its lease, and
/// a send takes at most [`SEND_TIMEOUT`]: the lease must exceed twice that.
pub const LEASE: Duration = Duration::from_secs(60);
/// Longest an SMTP exchange or webhook post may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages claimed at once.
pub const BATCH: usize = 20;

/// A message claimed for delivery.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    kind: String,
    payload: Value,
    attempts: i32,
}

/// Delivers every due notification, one at a time; returns how many were
/// delivered. See [`deliver_due_until`].
pub async fn deliver_due(db: &PgPool, notifier: &Notifier) -> Result<usize, sqlx::Error> {
    deliver_due_until(db, notifier, LEASE, &|| false).await
}

/// The delivery protocol. Claiming leases a batch in one short statement
/// (its `next_attempt_at` moves a lease ahead); each message is then sent
/// and its outcome recorded on its own, with no transaction or row lock
/// held across the network. So a crash or lost connection can send again
/// only the one message that was sent and not yet recorded; receivers can
/// tell it by its stable `Message-ID` (`webhook-id` for webhooks).
///
/// Between messages `stopping` is asked; once it says yes (or half the
/// lease is gone), the unsent claims are handed back and the call returns.
pub async fn deliver_due_until(
    db: &PgPool,
    notifier: &Notifier,
    lease: Duration,
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<usize, sqlx::Error> {
    let claimed_at = tokio::time::Instant::now();
    let mut claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2)
         WHERE id IN (SELECT id FROM outbox
                      WHERE delivered_at IS NULL AND next_attempt_at <= now()
                      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, payload, attempts",
    )
    .bind(BATCH as i64)
    .bind(lease.as_secs_f64())
    .fetch_all(db)
    .await?;
    claimed.sort_by_key(|message| message.id);
    let mut delivered = 0;
    for (index, message) in claimed.iter().enumerate() {
        if stopping() || claimed_at.elapsed() > lease / 2 {
            let unsent: Vec<i64> = claimed[index..].iter().map(|m| m.id).collect();
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = now() WHERE id = ANY($1) AND delivered_at IS NULL",
            )
            .bind(&unsent)
            .execute(db)
            .await?;
            break;
        }
        let outcome = notifier.deliver(db, message.id, &message.kind, &message.payload).await;
        if outcome.is_ok() {
            delivered += 1;
        }
        record(db, message, outcome, lease).await?;
    }
    Ok(delivered)
}

/// Records an outcome, retrying for a while if Postgres is away: a message
/// that was sent and never recorded is sent again once its lease ends.
async fn record(
    db: &PgPool,
    message: &Claimed,
    outcome: Result<(), String>,
    lease: Duration,
) -> Result<(), sqlx::Error> {
    if let Err(error) = &outcome {
        tracing::warn!(
            id = message.id,
            kind = message.kind,
            attempts = message.attempts + 1,
            error,
            "notification not delivered; will retry"
        );
    }
    let write = || {
        match &outcome {
        Ok(()) => sqlx::query(
            "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1",
        )
        .bind(message.id)
        .execute(db),
        Err(error) => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                    next_attempt_at = now() + make_interval(secs => $3)
             WHERE id = $1",
        )
        .bind(message.id)
        .bind(error)
        .bind(backoff(message.attempts).as_secs_f64())
        .execute(db),
    }
    };
    let give_up = tokio::time::Instant::now() + lease / 2;
    loop {
        match write().await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(id = message.id, error = %e, "cannot record a delivery yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Delivers due notifications every `interval` until `stop` says so; the
/// message being sent then is finished and recorded, the rest handed back.
pub async fn run_outbox(
    db: PgPool,
    notifier: Notifier,
    interval: Duration,
    lease: Duration,
    stop: watch::Receiver<bool>,
) {
    let stopping = || crate::workers::is_set(&stop);
    crate::workers::every(interval, stop.clone(), || async {
        while !stopping() {
            match deliver_due_until(&db, &notifier, lease, &stopping).await {
                Ok(BATCH..) => continue, // a full batch: more may be waiting
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox delivery failed");
                    break;
                }
            }
        }
    })
    .await;
}

/// The stable id of an outbox message, the same on every attempt: its row
/// id and a digest of its content (row ids alone repeat across databases).
pub fn message_key(id: i64, kind: &str, payload: &Value) -> String {
    let digest = Sha256::new().chain_update(kind).chain_update(payload.to_string()).finalize();
    format!("{id}.{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<u64> = (0..4).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16]);
        assert_eq!(backoff(30), MAX_BACKOFF);
        assert_eq!(backoff(-1).as_secs(), 2);
    }

    #[test]
    fn emails_are_rendered_per_kind() {
        let email = render_email(
            "email.order_confirmed",
            &json!({"to": "a@b.co", "name": "Ada", "order_number": "STM-1"}),
        )
        .unwrap();
        assert_eq!(email.to, "a@b.co");
        assert!(email.subject.contains("STM-1") && email.body.contains("Hello Ada"));
        assert!(render_email("email.unknown", &json!({"to": "a@b.co"})).is_none());
        assert!(render_email("email.order_confirmed", &json!({"name": "no address"})).is_none());
    }
}
