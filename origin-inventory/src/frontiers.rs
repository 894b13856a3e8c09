//! Best-available picks start at each pool's frontier, below which every
//! seat is booked or blocked (migration 0015); this worker moves them up past
//! what sold since its last step, so a pick walks only that, even while a
//! long snapshot keeps Postgres from forgetting the seats' old versions.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

/// How often frontiers move up: a pick walks at most what sold since.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// How long a step waits for a frontier another transaction holds before
/// it gives up until the next step.
pub const LOCK_WAIT: Duration = Duration::from_millis(100);

/// One step of the advancer.
pub struct Advanced {
    /// Frontiers moved up.
    pub moved: i64,
    /// The last seat-change journal row read: where the next step starts.
    pub last_read: i64,
}

/// Moves up the frontiers of the events named by the seat-change journal
/// after row `after` (0: all of it), waiting at most `lock_wait` for each.
pub async fn advance(db: &PgPool, after: i64, lock_wait: Duration) -> Result<Advanced, sqlx::Error> {
    sqlx::query_as!(
        Advanced,
        r#"SELECT moved AS "moved!", last_read AS "last_read!" FROM advance_pick_frontiers($1, $2)"#,
        after,
        lock_wait.as_millis() as i32
    )
    .fetch_one(db)
    .await
}

/// Whether `error` is a step giving up on a frontier held elsewhere.
pub fn gave_way(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).as_deref() == Some("55P03")
}

/// Moves frontiers up every [`INTERVAL`] until `stop` says so.
pub async fn run_frontier_advancer(db: PgPool, stop: watch::Receiver<bool>) {
    let last_read = AtomicI64::new(0);
    crate::workers::every(INTERVAL, stop, || async {
        match advance(&db, last_read.load(Ordering::Relaxed), LOCK_WAIT).await {
            Ok(step) => last_read.store(step.last_read, Ordering::Relaxed),
            Err(e) if gave_way(&e) => tracing::debug!("a frontier was busy; moving it up next step"),
            Err(e) => tracing::warn!(error = %e, "moving best-available frontiers up failed"),
        }
    })
    .await;
}
