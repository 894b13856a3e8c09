//! The housekeeping worker: lapsed holds expired (their seats free again
//! on every seat map), and ended sessions and old seat-change journal rows
//! forgotten once nothing can need them.

use sqlx::PgPool;

/// Expires lapsed holds every `interval`, so counts and seat maps stay
/// fresh. Correctness never depends on it: holds check `held_until` themselves.
pub async fn run_sweeper(
    db: PgPool,
    interval: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::workers::every(interval, stop, || async {
        let swept = async {
            let mut tx = db.begin().await?;
            let n = crate::reservations::expire_lapsed(&mut tx, None).await?;
            tx.commit().await?;
            crate::access::forget_expired_sessions(&db).await?;
            crate::live::forget_old_changes(&db).await?;
            Ok::<_, sqlx::Error>(n)
        };
        match swept.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "released lapsed holds"),
            Err(e) => tracing::warn!(error = %e, "hold sweeper failed"),
        }
    })
    .await;
}
