//! Live seat maps: committed seat changes, read once per origin from
//! Postgres's `seat_changes` journal (written by the inventory trigger,
//! migration 0008) and fanned out to every open checkout page as
//! server-sent events.
//!
//! The journal is read every [`POLL`] on a connection of its own: each read
//! takes the rows of the transactions that ended since the last one, which
//! are those whose xid lies between the oldest xid still running at the
//! last read and the oldest running now. Each stream filters the shared
//! feed by its event. A stream that falls behind, or a feed that lost its
//! connection, tells its page to reload the seat map instead of guessing.

use std::time::Duration;

use axum::response::sse::Event;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::reservations::SeatStatus;

/// How often the journal is read: how late a seat map hears of a change.
const POLL: Duration = Duration::from_millis(200);
/// The reader connection's `application_name`, as `pg_stat_activity` shows it.
pub const READER: &str = "stampede seat changes";
/// Journal rows are kept this long; readers need a few polls' worth.
const KEEP: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Seat {
        event: Uuid,
        seat: Uuid,
        status: SeatStatus,
    },
    /// Changes may have been missed: reload the seat map.
    Resync,
}

impl Feed {
    /// What the page of `event` hears of this, if anything.
    pub fn for_event(&self, event: Uuid) -> Option<Event> {
        match self {
            Feed::Seat { event: of, seat, status } if *of == event => {
                Some(Event::default().event("seat").data(format!("{seat} {}", status.as_str())))
            }
            Feed::Seat { .. } => None,
            Feed::Resync => Some(Event::default().event("resync").data("")),
        }
    }
}

/// The origin-wide feed of seat changes.
#[derive(Clone)]
pub struct SeatChanges {
    sender: broadcast::Sender<Feed>,
    /// Whether the journal is being read: a page that loads its seat map
    /// before then could miss a change.
    reading: watch::Sender<bool>,
}

impl Default for SeatChanges {
    fn default() -> Self {
        // Room for a burst of a few thousand changes before a slow page
        // is told to resync.
        Self { sender: broadcast::channel(4096).0, reading: watch::Sender::new(false) }
    }
}

impl SeatChanges {
    /// Reads the journal for as long as the origin runs, reconnecting
    /// after failures. The reader has a connection of its own, outside
    /// the request pool: a pool of one must still serve requests.
    pub async fn run(self, db: PgPool) {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*db.connect_options()).clone().application_name(READER));
        loop {
            if let Err(e) = self.follow(&own).await {
                tracing::warn!(error = %e, "seat change reader failed; retrying");
            }
            self.reading.send_replace(false);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        // From now on: what ended before is in the seat maps pages load.
        let mut horizon: String =
            sqlx::query_scalar!(r#"SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS "horizon!""#)
                .fetch_one(db)
                .await?;
        self.reading.send_replace(true);
        // Pages that connected while nobody read the journal reload their maps.
        drop(self.sender.send(Feed::Resync));
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // One statement, so one snapshot: every transaction below its
            // xmin has ended, and its rows (if it committed) are visible.
            let rows = sqlx::query_as!(
                JournalRow,
                r#"SELECT h.horizon::text AS "horizon!", c.event_id AS "event_id?", c.seats AS "seats?",
                          c.statuses AS "statuses?: Vec<SeatStatus>"
                   FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon) h
                   LEFT JOIN seat_changes c ON c.xid >= $1::text::xid8 AND c.xid < h.horizon
                   ORDER BY c.id"#,
                horizon,
            )
            .fetch_all(db)
            .await?;
            for row in &rows {
                let (Some(event), Some(seats), Some(statuses)) = (row.event_id, &row.seats, &row.statuses)
                else {
                    continue;
                };
                for (seat, status) in seats.iter().zip(statuses) {
                    // No subscribers is not an error: nobody is watching.
                    drop(self.sender.send(Feed::Seat { event, seat: *seat, status: *status }));
                }
            }
            if let Some(row) = rows.into_iter().next() {
                horizon = row.horizon;
            }
        }
    }

    /// Subscribes, then waits (briefly) until changes are being heard, so
    /// that a seat map loaded after this call misses nothing. If the
    /// reader is down, the page gets a `resync` once it is back.
    pub async fn subscribe(&self) -> broadcast::Receiver<Feed> {
        let feed = self.sender.subscribe();
        let mut reading = self.reading.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), reading.wait_for(|on| *on)).await;
        feed
    }
}

/// A journal row, beside the horizon of the read that found it (a read
/// that found nothing is one row of horizon alone).
struct JournalRow {
    horizon: String,
    event_id: Option<Uuid>,
    seats: Option<Vec<Uuid>>,
    statuses: Option<Vec<SeatStatus>>,
}

/// Drops journal rows every reader has long read: those numbered before
/// the first row younger than [`KEEP`], found by walking the primary key
/// from its start (no index on the rows' age, which every order would
/// write to). The walk reads the rows it drops, and then one more.
pub async fn forget_old_changes(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM seat_changes
         WHERE id < coalesce((SELECT id FROM seat_changes WHERE at >= now() - make_interval(secs => $1)
                              ORDER BY id LIMIT 1),
                             (SELECT max(id) + 1 FROM seat_changes))",
        KEEP.as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_hears_only_its_own_event_and_every_resync() {
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let change = |event| Feed::Seat { event, seat: Uuid::new_v4(), status: SeatStatus::Held };
        assert!(change(mine).for_event(mine).is_some());
        assert!(change(other).for_event(mine).is_none());
        assert!(Feed::Resync.for_event(mine).is_some());
    }
}
