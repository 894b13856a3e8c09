//! Delivering the outbox: notifications were written in the same
//! transaction as the change they announce; this worker sends them (email
//! over SMTP, signed organizer webhooks) and retries with exponential
//! backoff until they get through. Delivery is at least once.

use std::time::Duration;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use serde_json::{Value, json};
use sqlx::PgPool;

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
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { mailer, from: from.parse()?, http })
    }

    async fn deliver(&self, db: &PgPool, kind: &str, payload: &Value) -> Result<(), String> {
        if let Some(kind) = kind.strip_prefix("webhook.") {
            return self.post_webhook(db, kind, payload).await;
        }
        let email = render_email(kind, payload).ok_or_else(|| format!("cannot render {kind}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(email.to.parse().map_err(|e| format!("bad recipient: {e}"))?)
            .subject(email.subject)
            .body(email.body)
            .map_err(|e| e.to_string())?;
        self.mailer.send(message).await.map(drop).map_err(|e| e.to_string())
    }

    /// Posts to the organizer's webhook URL, signed like Stripe's.
    async fn post_webhook(&self, db: &PgPool, kind: &str, payload: &Value) -> Result<(), String> {
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
        let body = json!({"type": kind, "created_at": Utc::now(), "data": payload}).to_string();
        let signature = sign(secret.as_bytes(), Utc::now().timestamp(), body.as_bytes());
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("stampede-signature", signature)
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

/// Sends every due notification once; returns how many were delivered.
pub async fn deliver_due(db: &PgPool, notifier: &Notifier) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    // SKIP LOCKED: several origin instances share the outbox without double sends.
    let due: Vec<(i64, String, Value, i32)> = sqlx::query_as(
        "SELECT id, kind, payload, attempts FROM outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= now()
         ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut delivered = 0;
    for (id, kind, payload, attempts) in due {
        match notifier.deliver(db, &kind, &payload).await {
            Ok(()) => {
                delivered += 1;
                sqlx::query("UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(error) => {
                tracing::warn!(
                    id,
                    kind,
                    attempts = attempts + 1,
                    error,
                    "notification not delivered; will retry"
                );
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = now() + make_interval(secs => $3)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&error)
                .bind(backoff(attempts).as_secs_f64())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(delivered)
}

pub async fn run_outbox(db: PgPool, notifier: Notifier, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    loop {
        every.tick().await;
        loop {
            match deliver_due(&db, &notifier).await {
                Ok(20..) => continue, // a full batch: more may be waiting
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox delivery failed");
                    break;
                }
            }
        }
    }
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
