//! `/metrics` for Prometheus, in the OpenMetrics text format
//! (`prometheus-client`): hold, commit and access outcomes as counters, hold
//! and commit latency as histograms, outbox lag and pool use read at scrape
//! time.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::error::ApiError;

/// Outcomes worth counting, each a labelled counter.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    HoldCreated,
    HoldConflict,
    HoldLimited,
    HoldRejected,
    CommitPaid,
    CommitDeclined,
    CommitPending,
    CommitRefused,
    AccessMissing,
    AccessInvalid,
    AccessWrongEvent,
    AccessEnded,
}

impl Outcome {
    const ALL: [Outcome; 12] = [
        Outcome::HoldCreated,
        Outcome::HoldConflict,
        Outcome::HoldLimited,
        Outcome::HoldRejected,
        Outcome::CommitPaid,
        Outcome::CommitDeclined,
        Outcome::CommitPending,
        Outcome::CommitRefused,
        Outcome::AccessMissing,
        Outcome::AccessInvalid,
        Outcome::AccessWrongEvent,
        Outcome::AccessEnded,
    ];

    /// The counter family (an index into `FAMILIES`) and the label.
    fn series(self) -> (usize, &'static str) {
        match self {
            Outcome::HoldCreated => (0, "created"),
            Outcome::HoldConflict => (0, "conflict"),
            Outcome::HoldLimited => (0, "limit_exceeded"),
            Outcome::HoldRejected => (0, "rejected"),
            Outcome::CommitPaid => (1, "paid"),
            Outcome::CommitDeclined => (1, "declined"),
            Outcome::CommitPending => (1, "pending"),
            Outcome::CommitRefused => (1, "refused"),
            Outcome::AccessMissing => (2, "missing"),
            Outcome::AccessInvalid => (2, "invalid"),
            Outcome::AccessWrongEvent => (2, "wrong_event"),
            Outcome::AccessEnded => (2, "session_ended"),
        }
    }

    /// The outcome of a hold request answered with `status`.
    pub fn of_hold(status: u16) -> Self {
        match status {
            200 | 201 => Outcome::HoldCreated,
            409 => Outcome::HoldConflict,
            429 => Outcome::HoldLimited,
            _ => Outcome::HoldRejected,
        }
    }

    /// The outcome of a commit request answered with `status`.
    pub fn of_commit(status: u16) -> Self {
        match status {
            200 => Outcome::CommitPaid,
            402 => Outcome::CommitDeclined,
            503 => Outcome::CommitPending,
            _ => Outcome::CommitRefused,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionState {
    state: &'static str,
}

/// What is timed: each has its outcomes and a latency histogram.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Hold,
    Commit,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    outcomes: [Family<OutcomeLabel, Counter>; 3],
    hold_seconds: Histogram,
    commit_seconds: Histogram,
    outbox_pending: Gauge,
    outbox_lag_seconds: Gauge<f64, AtomicU64>,
    pool_connections: Family<ConnectionState, Gauge>,
    pool_max_connections: Gauge,
}

/// The counter families, in `Outcome::series` order.
const FAMILIES: [(&str, &str); 3] = [
    ("stampede_holds", "Hold requests by outcome"),
    ("stampede_commits", "Payment requests by outcome"),
    ("stampede_access_refusals", "Checkout requests refused for their access token, by reason"),
];

impl Default for Metrics {
    fn default() -> Self {
        // 1 ms to about 8 s: a hold takes a few milliseconds, a payment
        // waits for the provider.
        let latency = || Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let mut m = Self {
            registry: Registry::default(),
            outcomes: Default::default(),
            hold_seconds: latency(),
            commit_seconds: latency(),
            outbox_pending: Gauge::default(),
            outbox_lag_seconds: Gauge::default(),
            pool_connections: Family::default(),
            pool_max_connections: Gauge::default(),
        };
        // The registry keeps handles to the same metrics this struct updates.
        let registry = &mut m.registry;
        for ((name, help), family) in FAMILIES.iter().zip(&m.outcomes) {
            registry.register(*name, *help, family.clone());
        }
        registry.register(
            "stampede_hold_duration_seconds",
            "Time to answer a hold request",
            m.hold_seconds.clone(),
        );
        registry.register(
            "stampede_commit_duration_seconds",
            "Time to answer a payment request, the provider's included",
            m.commit_seconds.clone(),
        );
        registry.register(
            "stampede_outbox_pending",
            "Notifications not yet delivered",
            m.outbox_pending.clone(),
        );
        registry.register(
            "stampede_outbox_lag_seconds",
            "Age of the oldest undelivered notification",
            m.outbox_lag_seconds.clone(),
        );
        registry.register(
            "stampede_db_pool_connections",
            "Request pool connections by state",
            m.pool_connections.clone(),
        );
        registry.register(
            "stampede_db_pool_max_connections",
            "Size of the request pool",
            m.pool_max_connections.clone(),
        );
        // Every outcome is there from the start, at 0.
        for outcome in Outcome::ALL {
            m.counter(outcome);
        }
        m
    }
}

impl Metrics {
    fn counter(&self, outcome: Outcome) -> Counter {
        let (family, label) = outcome.series();
        self.outcomes[family].get_or_create(&OutcomeLabel { outcome: label }).clone()
    }

    pub fn count(&self, outcome: Outcome) {
        self.counter(outcome).inc();
    }

    /// Runs a handler's work, then counts its answer by status and times it.
    pub async fn observe<T>(
        &self,
        operation: Operation,
        work: impl Future<Output = Result<T, ApiError>>,
        status_of: impl Fn(&T) -> StatusCode,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let answer = work.await;
        self.record(operation, started, answer.as_ref().map_or_else(ApiError::status, status_of));
        answer
    }

    /// Counts an answer of `status` to `operation`, begun at `started`.
    pub fn record(&self, operation: Operation, started: Instant, status: StatusCode) {
        let status = status.as_u16();
        let (outcome, latency) = match operation {
            Operation::Hold => (Outcome::of_hold(status), &self.hold_seconds),
            Operation::Commit => (Outcome::of_commit(status), &self.commit_seconds),
        };
        self.count(outcome);
        latency.observe(started.elapsed().as_secs_f64());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// The metrics as a scrape reads them: the outbox's backlog and the
    /// pool's use are read now, the rest has been counted as it happened.
    pub async fn scrape(&self, db: &PgPool) -> Result<String, sqlx::Error> {
        let backlog = sqlx::query!(
            r#"SELECT count(*) AS "pending!", coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS "lag!"
               FROM outbox WHERE delivered_at IS NULL"#,
        )
        .fetch_one(db)
        .await?;
        self.outbox_pending.set(backlog.pending);
        self.outbox_lag_seconds.set(backlog.lag);
        let idle = db.num_idle() as i64;
        self.pool_connections.get_or_create(&ConnectionState { state: "idle" }).set(idle);
        self.pool_connections
            .get_or_create(&ConnectionState { state: "in_use" })
            .set(i64::from(db.size()) - idle);
        self.pool_max_connections.set(i64::from(db.options().get_max_connections()));
        Ok(self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outcomes_and_latencies_render_as_openmetrics() {
        let metrics = Metrics::default();
        let fresh = metrics.render();
        assert!(
            fresh.contains("stampede_commits_total{outcome=\"paid\"} 0\n"),
            "every series from the start: {fresh}"
        );
        let held = |status: u16| async move { Ok::<_, ApiError>(StatusCode::from_u16(status).unwrap()) };
        for status in [201, 409, 409] {
            metrics.observe(Operation::Hold, held(status), |s| *s).await.unwrap();
        }
        let refused = async {
            Err::<StatusCode, _>(ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_failed", "no"))
        };
        assert!(metrics.observe(Operation::Commit, refused, |s| *s).await.is_err());
        let out = metrics.render();
        assert!(out.contains("stampede_holds_total{outcome=\"conflict\"} 2\n"), "{out}");
        assert!(out.contains("stampede_commits_total{outcome=\"declined\"} 1\n"), "{out}");
        assert!(out.contains("# HELP stampede_holds Hold requests by outcome"), "{out}");
        assert_eq!(out.matches("# TYPE stampede_holds counter").count(), 1, "{out}");
        assert!(out.contains("# TYPE stampede_hold_duration_seconds histogram"), "{out}");
        assert!(out.contains("stampede_hold_duration_seconds_count 3\n"), "{out}");
        assert!(out.contains("stampede_commit_duration_seconds_count 1\n"), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }
}
