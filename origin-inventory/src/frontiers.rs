//! Best-available picks start at each pool's frontier, below which every
//! seat is booked (migration 0015); this worker moves the frontiers up past
//! what sold since its last step, so a pick walks only that, even while a
//! long snapshot keeps Postgres from forgetting the seats' old versions.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

/// How often frontiers move up: a pick walks at most what sold since.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// One step of the advancer.
pub struct Advanced {
    /// Frontiers moved up.
    pub moved: i64,
    /// The last seat-change journal row read: where the next step starts.
    pub last_read: i64,
}

/// Moves up the frontiers of the events named by the seat-change journal
/// after row `after` (0: all of it).
pub async fn advance(db: &PgPool, after: i64) -> Result<Advanced, sqlx::Error> {
    sqlx::query_as!(
        Advanced,
        r#"SELECT moved AS "moved!", last_read AS "last_read!" FROM advance_pick_frontiers($1)"#,
        after
    )
    .fetch_one(db)
    .await
}

/// Moves frontiers up every [`INTERVAL`] until `stop` says so.
pub async fn run_frontier_advancer(db: PgPool, stop: watch::Receiver<bool>) {
    let last_read = AtomicI64::new(0);
    crate::workers::every(INTERVAL, stop, || async {
        match advance(&db, last_read.load(Ordering::Relaxed)).await {
            Ok(step) => last_read.store(step.last_read, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "moving best-available frontiers up failed"),
        }
    })
    .await;
}
