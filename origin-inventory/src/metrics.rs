//! `/metrics` in the Prometheus text format: hold and commit outcomes as
//! counters, outbox lag and pool saturation read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
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

    fn series(self) -> (&'static str, &'static str) {
        match self {
            Outcome::HoldCreated => ("stampede_holds_total", "created"),
            Outcome::HoldConflict => ("stampede_holds_total", "conflict"),
            Outcome::HoldLimited => ("stampede_holds_total", "limit_exceeded"),
            Outcome::HoldRejected => ("stampede_holds_total", "rejected"),
            Outcome::CommitPaid => ("stampede_commits_total", "paid"),
            Outcome::CommitDeclined => ("stampede_commits_total", "declined"),
            Outcome::CommitPending => ("stampede_commits_total", "pending"),
            Outcome::CommitRefused => ("stampede_commits_total", "refused"),
            Outcome::AccessMissing => ("stampede_access_refusals_total", "missing"),
            Outcome::AccessInvalid => ("stampede_access_refusals_total", "invalid"),
            Outcome::AccessWrongEvent => ("stampede_access_refusals_total", "wrong_event"),
            Outcome::AccessEnded => ("stampede_access_refusals_total", "session_ended"),
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

#[derive(Debug, Default)]
pub struct Metrics {
    counts: [AtomicU64; Outcome::ALL.len()],
}

impl Metrics {
    pub fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a handler's answer by its status and passes it on.
    pub fn observe<T>(
        &self,
        answer: Result<T, ApiError>,
        status_of: impl Fn(&T) -> StatusCode,
        classify: fn(u16) -> Outcome,
    ) -> Result<T, ApiError> {
        let status = answer.as_ref().map_or_else(ApiError::status, status_of);
        self.count(classify(status.as_u16()));
        answer
    }

    fn render_counters(&self, out: &mut String) {
        let mut last = "";
        for outcome in Outcome::ALL {
            let (name, label) = outcome.series();
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let value = self.counts[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{outcome=\"{label}\"}} {value}");
        }
    }
}

/// Prometheus metrics: counters of outcomes, the pool, the outbox.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, content_type = "text/plain; version=0.0.4", description = "Prometheus text exposition"),
))]
async fn get_metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    state.metrics.render_counters(&mut out);
    let (pending, lag): (i64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
         FROM outbox WHERE delivered_at IS NULL",
    )
    .fetch_one(&state.db)
    .await?;
    let pool = &state.db;
    let _ = write!(
        out,
        "# TYPE stampede_outbox_pending gauge\nstampede_outbox_pending {pending}\n\
         # TYPE stampede_outbox_lag_seconds gauge\nstampede_outbox_lag_seconds {lag}\n\
         # TYPE stampede_db_pool_connections gauge\n\
         stampede_db_pool_connections{{state=\"idle\"}} {}\n\
         stampede_db_pool_connections{{state=\"in_use\"}} {}\n\
         # TYPE stampede_db_pool_max_connections gauge\nstampede_db_pool_max_connections {}\n",
        pool.num_idle(),
        pool.size() as usize - pool.num_idle(),
        pool.options().get_max_connections(),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_one_type_line_per_family() {
        let metrics = Metrics::default();
        metrics.count(Outcome::of_hold(201));
        metrics.count(Outcome::of_hold(409));
        metrics.count(Outcome::of_hold(409));
        metrics.count(Outcome::of_commit(402));
        let mut out = String::new();
        metrics.render_counters(&mut out);
        assert!(out.contains("stampede_holds_total{outcome=\"conflict\"} 2\n"), "{out}");
        assert!(out.contains("stampede_commits_total{outcome=\"declined\"} 1\n"));
        assert_eq!(out.matches("# TYPE stampede_holds_total counter").count(), 1);
    }
}
