//! The outbox: notifications are written in the same transaction as the
//! change they announce ([`notify`]); the delivery worker sends them (email
//! over SMTP, signed organizer webhooks) and retries with exponential
//! backoff until they get through. Delivery is at least once, and a crash
//! sends again at most one message per delivery lane (see
//! [`deliver_due_until`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use lettre::message::Mailbox;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::watch;

use crate::email::{OrderDetails, render_email};
use crate::mailer::Mailer;
use crate::signatures::sign;

/// Queues a notification in the same transaction as the change it announces.
pub async fn notify(tx: &mut PgConnection, kind: &str, payload: Value) -> Result<(), sqlx::Error> {
    sqlx::query!("INSERT INTO outbox (kind, payload) VALUES ($1, $2)", kind, payload).execute(tx).await?;
    Ok(())
}

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Wait before attempt `attempts + 1`: 2, 4, 8 … seconds, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(0, 20) as u32;
    Duration::from_secs(2u64.saturating_pow(exponent + 1)).min(MAX_BACKOFF)
}

/// Where notifications go, and how many at once.
#[derive(Clone)]
pub struct Notifier {
    mailer: Arc<Mailer>,
    from: Mailbox,
    http: reqwest::Client,
    lanes: usize,
    /// Where buyers reach the site: links in emails start with it.
    public_url: String,
}

/// An organizer's webhook endpoint and signing secret.
type WebhookTarget = Option<(String, String)>;

impl Notifier {
    /// `smtp_url`: `smtp://host:port` (plain, local), `smtp://host?tls=required`, `smtps://host`.
    /// `lanes`: messages in flight at once, each over a pooled SMTP
    /// connection or a kept-alive HTTP one.
    /// `public_url`: where buyers reach the site (`STAMPEDE_PUBLIC_URL`).
    pub fn new(smtp_url: &str, from: &str, lanes: usize, public_url: &str) -> anyhow::Result<Self> {
        let lanes = lanes.max(1);
        let mailer = Arc::new(Mailer::new(smtp_url, lanes, SEND_TIMEOUT)?);
        let http = reqwest::Client::builder().timeout(SEND_TIMEOUT).build()?;
        Ok(Self {
            mailer,
            from: from.parse()?,
            http,
            lanes,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn deliver(&self, message: &Claimed, batch: &BatchContext) -> Result<(), String> {
        let targets = &batch.webhook_targets;
        let key = message_key(message.id, &message.kind, &message.payload);
        if let Some(kind) = message.kind.strip_prefix("webhook.") {
            let target =
                webhook_event(&message.payload).and_then(|event| targets.get(&event)).ok_or("no event_id")?;
            return match target {
                Some((url, secret)) => self.post_webhook(url, secret, &key, kind, &message.payload).await,
                None => Ok(()), // no webhook configured: nothing to deliver
            };
        }
        let order = message.payload["order_number"].as_str().and_then(|n| batch.orders.get(n));
        let email = render_email(&message.kind, &message.payload, order, &self.public_url)
            .ok_or_else(|| format!("cannot render {}", message.kind))?;
        let mail = email.message(self.from.clone(), format!("<{key}@{}>", self.from.email.domain()))?;
        self.mailer.send(mail.envelope(), &mail.formatted()).await.map_err(|e| e.to_string())
    }

    /// Posts to the organizer's webhook URL, signed like Stripe's, with the
    /// message's stable id as `webhook-id` and `id` (receivers deduplicate).
    async fn post_webhook(
        &self,
        url: &str,
        secret: &str,
        key: &str,
        kind: &str,
        payload: &Value,
    ) -> Result<(), String> {
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
pub const BATCH: usize = 100;
/// Messages in flight at once, by default (`STAMPEDE_OUTBOX_LANES`).
///
/// A lane's turn is a send and then the record of its outcome, each a few
/// round trips, so the outbox delivers at most `lanes` messages per turn
/// however idle the CPU. While orders keep both cores busy those round
/// trips wait their turn to run, and 16 lanes fell behind the orders: on
/// the local stack, 16 buyers straight at the origin for 40 s (email and
/// webhook per order), 82% of the messages delivered by the run's end and
/// a lag growing to 7.4 s, against 98% and 1.2 s with 32 lanes. More lanes
/// cost no CPU per message; they raise how many messages a crash may send
/// twice (one per lane) and the SMTP connections kept open.
pub const LANES: usize = 32;

/// A message claimed for delivery.
#[derive(Debug, serde::Deserialize)]
struct Claimed {
    id: i64,
    kind: String,
    payload: Value,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
}

/// Where this process's claims begin their walk of `outbox_due`.
///
/// A message that is delivered, or fails and is moved to its next attempt,
/// leaves its entry in `outbox_due` until vacuum removes it, and those
/// entries lie exactly where a claim from the start of the index walks:
/// on a busy outbox, every message sent since the last vacuum, hundreds of
/// thousands of entries read by every claim. So a claim starts at a floor
/// below which everything was already claimed, and every [`FULL_EVERY`]
/// one claim walks from the start, for what a floor cannot see: messages
/// handed back or left by a sender that died (their leases ended), and
/// messages committed more than [`FLOOR_MARGIN`] after their transaction
/// began (`next_attempt_at` defaults to the transaction's start).
pub struct Claims {
    full_every: Duration,
    margin: Duration,
    state: std::sync::Mutex<FloorState>,
}

#[derive(Default)]
struct FloorState {
    floor: Option<DateTime<Utc>>,
    last_full: Option<tokio::time::Instant>,
}

/// How often a claim walks `outbox_due` from its start.
pub const FULL_EVERY: Duration = Duration::from_secs(10);
/// How far below the time of a claim the next one begins.
pub const FLOOR_MARGIN: Duration = Duration::from_secs(10);

impl Claims {
    /// Claims that walk from the start every `full_every`, and otherwise
    /// begin `margin` below the time of the claim before.
    pub fn new(full_every: Duration, margin: Duration) -> Self {
        Self { full_every, margin, state: Default::default() }
    }

    /// Claims that always walk from the start.
    pub fn full() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// Where the next claim starts: `None` for the start of the index.
    fn start(&self) -> Option<DateTime<Utc>> {
        let mut state = self.state.lock().expect("claims lock");
        let now = tokio::time::Instant::now();
        if state.last_full.is_none_or(|last| now.duration_since(last) >= self.full_every) {
            state.last_full = Some(now);
            return None;
        }
        state.floor
    }

    /// After a claim made at `margin_ago` (its time less the margin) took
    /// `claimed`. A claim that took less than a batch took every due
    /// message above its start that no one else held, so the next may begin
    /// at `margin_ago`; after a full batch, more may be due anywhere above
    /// the first message taken, so the next begins there at the latest.
    fn advance(&self, margin_ago: DateTime<Utc>, claimed: &[Claimed]) {
        let first_taken = claimed.iter().map(|message| message.next_attempt_at).min();
        let floor = match first_taken {
            Some(first) if claimed.len() >= BATCH => margin_ago.min(first),
            _ => margin_ago,
        };
        self.state.lock().expect("claims lock").floor = Some(floor);
    }
}

/// The event a webhook payload is about.
fn webhook_event(payload: &Value) -> Option<uuid::Uuid> {
    payload["event_id"].as_str().and_then(|id| uuid::Uuid::try_parse(id).ok())
}

/// Delivers a batch of due notifications, claimed from the start of the
/// index; returns how many were delivered. See [`deliver_due_until`].
pub async fn deliver_due(db: &PgPool, notifier: &Notifier) -> Result<usize, sqlx::Error> {
    deliver_due_until(db, notifier, LEASE, &Claims::full(), &|| false).await
}

/// The delivery protocol. Claiming leases a batch, the messages due first
/// from where `claims` begin, in one short statement (their `leased_until`
/// is set a lease ahead);
/// the claimed messages are then sent, up to the notifier's lanes at once,
/// and each outcome is recorded before its lane sends again, with no
/// transaction or row lock held across the network. Lanes share their
/// writes ([`Records`]). So a crash or lost connection can send again only
/// the messages that were sent and not yet recorded, at most one per lane;
/// receivers can tell them by their stable `Message-ID` (`webhook-id` for
/// webhooks).
///
/// Before each send `stopping` is asked; once it says yes (or half the
/// lease is gone), the unsent claims are handed back and the call returns
/// when the sends in flight are recorded.
pub async fn deliver_due_until(
    db: &PgPool,
    notifier: &Notifier,
    lease: Duration,
    claims: &Claims,
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<usize, sqlx::Error> {
    let claimed_at = tokio::time::Instant::now();
    // One row whether or not anything was due: the database's time moves
    // the floor on an idle outbox too.
    let claim = sqlx::query!(
        r#"WITH claimed AS (
               UPDATE outbox SET leased_until = now() + make_interval(secs => $2)
               WHERE id IN (SELECT id FROM outbox
                            WHERE delivered_at IS NULL AND next_attempt_at <= now()
                              AND next_attempt_at >= coalesce($3::timestamptz, '-infinity')
                              AND (leased_until IS NULL OR leased_until <= now())
                            ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING id, kind, payload, attempts, next_attempt_at)
           SELECT now() - make_interval(secs => $4) AS "margin_ago!",
                  coalesce(json_agg(claimed ORDER BY id), '[]') AS "claimed!: sqlx::types::Json<Vec<Claimed>>"
           FROM claimed"#,
        BATCH as i64,
        lease.as_secs_f64(),
        claims.start(),
        claims.margin.as_secs_f64(),
    )
    .fetch_one(db)
    .await?;
    let claimed = claim.claimed.0;
    claims.advance(claim.margin_ago, &claimed);
    let batch = BatchContext {
        webhook_targets: webhook_targets(db, &claimed).await?,
        orders: order_details(db, &claimed).await?,
    };
    let records = Records { db, lease, queue: Default::default(), writing: Default::default() };
    let mut delivered = 0;
    let mut waiting = claimed.iter().enumerate();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < notifier.lanes {
            let Some((index, message)) = waiting.next() else { break };
            if stopping() || claimed_at.elapsed() > lease / 2 {
                let unsent: Vec<i64> = claimed[index..].iter().map(|m| m.id).collect();
                sqlx::query!(
                    "UPDATE outbox SET leased_until = NULL WHERE id = ANY($1) AND delivered_at IS NULL",
                    &unsent,
                )
                .execute(db)
                .await?;
                waiting = claimed[claimed.len()..].iter().enumerate();
                break;
            }
            in_flight.push(async {
                let outcome = Outcome::of(message, notifier.deliver(message, &batch).await);
                let sent = outcome.error.is_none();
                records.write(outcome).await.map(|()| sent)
            });
        }
        match in_flight.next().await {
            Some(sent) => delivered += usize::from(sent?),
            None => break,
        }
    }
    Ok(delivered)
}

/// How one delivery attempt ended.
struct Outcome {
    id: i64,
    /// `None` when delivered.
    error: Option<String>,
    /// Wait before the next attempt, if this one failed.
    retry_after: Duration,
}

impl Outcome {
    fn of(message: &Claimed, sent: Result<(), String>) -> Self {
        if let Err(error) = &sent {
            tracing::warn!(
                id = message.id,
                kind = message.kind,
                attempts = message.attempts + 1,
                error,
                "notification not delivered; will retry"
            );
        }
        Self { id: message.id, error: sent.err(), retry_after: backoff(message.attempts) }
    }
}

/// Outcomes written in groups, as Postgres commits in groups: one write
/// at a time, and each takes every outcome that arrived while the previous
/// one was under way. A lane waits for the write that takes its own
/// outcome and no other. Lanes once waited in turn to write whatever was
/// waiting, each lingering 2 ms for more outcomes: a lane lingered for the
/// lanes behind it, which then lingered for the next, and the outbox sent
/// one message at a time (611–648 messages/s draining a backlog on the
/// local stack, against 1,641–3,643 since, in turns; 0.13 writes per
/// message without lingering, 0.10 with it, which kept fewer lanes busy).
///
/// The writes are one after another, so each one's round trips bound how
/// fast the outbox sends. A connection taken from the pool costs one more:
/// sqlx pings it before handing it out. So a write passes its connection
/// on to the next while outcomes already wait for it and the pool has
/// others to spare (draining a backlog in `cargo xtask bench origin`:
/// 2,910 messages/s, 358% of twice the peak commit rate, against 1,067,
/// 171%, taking a connection for every write). A connection that broke in
/// between fails its write, which then takes a new one from the pool,
/// pinged.
struct Records<'a> {
    db: &'a PgPool,
    lease: Duration,
    queue: std::sync::Mutex<Queue>,
    /// The turn to write, with the connection the last write passed on.
    writing: tokio::sync::Mutex<Option<PoolConnection<Postgres>>>,
}

/// The outcomes waiting for a write, and how far the writes have come.
#[derive(Default)]
struct Queue {
    waiting: Vec<Outcome>,
    /// Outcomes queued so far: the last one's number.
    queued: u64,
    /// Outcomes taken by writes so far (each write takes all that wait).
    taken: u64,
}

impl Records<'_> {
    /// Returns once `outcome` is written (or the write that took it failed).
    async fn write(&self, outcome: Outcome) -> Result<(), sqlx::Error> {
        let queue = || self.queue.lock().expect("outcomes lock");
        let mine = {
            let mut queue = queue();
            queue.waiting.push(outcome);
            queue.queued += 1;
            queue.queued
        };
        let mut turn = self.writing.lock().await;
        // A write that took ours has finished: it held the turn throughout.
        if queue().taken >= mine {
            return Ok(());
        }
        let group = {
            let mut queue = queue();
            queue.taken = queue.queued;
            std::mem::take(&mut queue.waiting)
        };
        let written = record(self.db, &mut turn, &group, self.lease).await;
        let pool_has_spare =
            self.db.num_idle() > 0 || self.db.size() < self.db.options().get_max_connections();
        if queue().waiting.is_empty() || !pool_has_spare {
            *turn = None;
        }
        written
    }
}

/// What a batch's messages refer to, read once per batch.
struct BatchContext {
    webhook_targets: HashMap<uuid::Uuid, WebhookTarget>,
    /// The confirmed orders' details, by order number.
    orders: HashMap<String, OrderDetails>,
}

/// The event, venue and tickets of the orders the claimed confirmations
/// are about, in one query per batch (read at sending, so the email shows
/// the event as it is then).
async fn order_details(
    db: &PgPool,
    claimed: &[Claimed],
) -> Result<HashMap<String, OrderDetails>, sqlx::Error> {
    let numbers: Vec<&str> = claimed
        .iter()
        .filter(|m| m.kind == "email.order_confirmed")
        .filter_map(|m| m.payload["order_number"].as_str())
        .collect();
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query_scalar!(
        r#"SELECT json_build_object(
                    'order_number', o.order_number, 'event_title', e.title, 'venue', v.name, 'city', v.city,
                    'timezone', v.timezone, 'starts_at', e.starts_at, 'total_cents', o.total_cents,
                    'currency', o.currency,
                    'tickets', coalesce((
                        SELECT json_agg(s.shown || jsonb_build_object('code', t.code) ORDER BY s.shown_order)
                        FROM tickets t JOIN seats s ON s.id = t.seat_id
                        WHERE t.order_id = o.id), '[]'))
                AS "details!: sqlx::types::Json<OrderDetails>"
         FROM orders o JOIN events e ON e.id = o.event_id JOIN venues v ON v.id = e.venue_id
         WHERE o.order_number = ANY($1)"#,
        &numbers as _,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|row| (row.0.order_number.clone(), row.0)).collect())
}

/// The webhook endpoints of the events the claimed webhooks are about, in
/// one query per batch.
async fn webhook_targets(
    db: &PgPool,
    claimed: &[Claimed],
) -> Result<HashMap<uuid::Uuid, WebhookTarget>, sqlx::Error> {
    let events: Vec<uuid::Uuid> = claimed
        .iter()
        .filter(|m| m.kind.starts_with("webhook."))
        .filter_map(|m| webhook_event(&m.payload))
        .collect();
    if events.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        "SELECT e.id, o.webhook_url, o.webhook_secret FROM events e JOIN organizers o ON o.id = e.organizer_id
         WHERE e.id = ANY($1)",
        &events,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.webhook_url.zip(row.webhook_secret))).collect())
}

/// Records outcomes, retrying for a while if Postgres is away: a message
/// that was sent and never recorded is sent again once its lease ends. The
/// record does not wait for the disk, so a crash of Postgres itself may
/// also send again the messages recorded in its last moments.
async fn record(
    db: &PgPool,
    connection: &mut Option<PoolConnection<Postgres>>,
    outcomes: &[Outcome],
    lease: Duration,
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.id).collect();
    let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
    let retry_after: Vec<f64> = outcomes.iter().map(|o| o.retry_after.as_secs_f64()).collect();
    // `outbox_record_all` (migrations 0009, 0020): an asynchronous commit that ends the leases.
    let write = async |connection: Option<PoolConnection<Postgres>>| {
        let mut connection = match connection {
            Some(passed_on) => passed_on,
            None => db.acquire().await?,
        };
        sqlx::query!("SELECT outbox_record_all($1, $2, $3)", &ids, &errors as _, &retry_after)
            .execute(&mut *connection)
            .await?;
        Ok::<_, sqlx::Error>(connection)
    };
    let give_up = tokio::time::Instant::now() + lease / 2;
    loop {
        match write(connection.take()).await {
            Ok(used) => {
                *connection = Some(used);
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(messages = ids.len(), error = %e, "cannot record deliveries yet; retrying");
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
    let claims = Claims::new(FULL_EVERY, FLOOR_MARGIN);
    crate::workers::every(interval, stop.clone(), || async {
        while !stopping() {
            match deliver_due_until(&db, &notifier, lease, &claims, &stopping).await {
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
}
