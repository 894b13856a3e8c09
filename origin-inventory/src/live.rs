//! Live seat maps: committed seat changes, heard once from Postgres
//! (`LISTEN seat_changes`, fed by the inventory trigger) and fanned out to
//! every open checkout page as server-sent events.
//!
//! One listener connection serves the whole origin; each stream filters
//! the shared feed by its event. A stream that falls behind, or a feed
//! that lost its connection (notifications are not replayed), tells its
//! page to reload the seat map instead of guessing.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::access::{Checkout, EventId};
use crate::app::AppState;

const CHANNEL: &str = "seat_changes";

/// A stream ends after this long and the browser reconnects (after
/// [`RECONNECT`]): an edge that limits request time never cuts one off
/// mid-event, and no instance is pinned for good.
const STREAM_LIFETIME: Duration = Duration::from_secs(45);
const RECONNECT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Seat {
        event: Uuid,
        seat: Uuid,
        status: String,
    },
    /// Changes may have been missed: reload the seat map.
    Resync,
}

impl Feed {
    /// Parses the trigger's payload, "<event> <seat> <STATUS>".
    fn parse(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let event = parts.next()?.parse().ok()?;
        let seat = parts.next()?.parse().ok()?;
        let status = parts.next()?.to_owned();
        parts.next().is_none().then_some(Feed::Seat { event, seat, status })
    }

    /// What the page of `event` hears of this, if anything.
    fn for_event(&self, event: Uuid) -> Option<Event> {
        match self {
            Feed::Seat { event: of, seat, status } if *of == event => {
                Some(Event::default().event("seat").data(format!("{seat} {status}")))
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
    /// Whether `LISTEN` is in effect: a page that loads its seat map
    /// before then could miss a change.
    listening: watch::Sender<bool>,
}

impl Default for SeatChanges {
    fn default() -> Self {
        // Room for a burst of a few thousand changes before a slow page
        // is told to resync.
        Self { sender: broadcast::channel(4096).0, listening: watch::Sender::new(false) }
    }
}

impl SeatChanges {
    /// Listens for as long as the origin runs, reconnecting after failures.
    /// The listener has a connection of its own, outside the request pool:
    /// it holds it for good, and a pool of one must still serve requests.
    pub async fn run(self, db: PgPool) {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*db.connect_options()).clone());
        loop {
            if let Err(e) = self.listen(&own).await {
                tracing::warn!(error = %e, "seat change listener failed; retrying");
            }
            self.listening.send_replace(false);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(db).await?;
        listener.listen(CHANNEL).await?;
        self.listening.send_replace(true);
        // Pages that connected while nobody listened reload their maps.
        drop(self.sender.send(Feed::Resync));
        loop {
            match listener.try_recv().await? {
                Some(notification) => match Feed::parse(notification.payload()) {
                    // No subscribers is not an error: nobody is watching.
                    Some(feed) => drop(self.sender.send(feed)),
                    None => tracing::warn!(payload = notification.payload(), "unreadable seat change"),
                },
                // Reconnected: whatever was announced meanwhile is lost.
                None => drop(self.sender.send(Feed::Resync)),
            }
        }
    }

    /// Subscribes, then waits (briefly) until changes are being heard, so
    /// that a seat map loaded after this call misses nothing. If the
    /// listener is down, the page gets a `resync` once it is back.
    async fn subscribe(&self) -> broadcast::Receiver<Feed> {
        let feed = self.sender.subscribe();
        let mut listening = self.listening.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), listening.wait_for(|on| *on)).await;
        feed
    }
}

/// `GET /events/{id}/checkout/seat-changes`: `seat` events ("<seat id>
/// <STATUS>") and `resync` events for one event's seat map.
pub async fn seat_changes(
    State(state): State<AppState>,
    checkout: Checkout<EventId>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let event = checkout.event;
    let feed = state.seat_changes.subscribe().await;
    let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
    let first = Event::default().retry(RECONNECT).comment("seat changes follow");
    let changes = futures::stream::unfold(feed, move |mut feed| async move {
        loop {
            let next = match tokio::time::timeout_at(ends, feed.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => Feed::Resync.for_event(event),
                Ok(Ok(feed)) => feed.for_event(event),
            };
            if let Some(sent) = next {
                return Some((Ok(sent), feed));
            }
        }
    });
    let stream = futures::StreamExt::chain(futures::stream::once(async { Ok(first) }), changes);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_seat_changes() {
        let event = Uuid::new_v4();
        let seat = Uuid::new_v4();
        assert_eq!(
            Feed::parse(&format!("{event} {seat} BOOKED")),
            Some(Feed::Seat { event, seat, status: "BOOKED".into() })
        );
        assert_eq!(Feed::parse(&format!("{event} {seat}")), None);
        assert_eq!(Feed::parse(&format!("{event} {seat} HELD extra")), None);
        assert_eq!(Feed::parse("not-a-uuid x HELD"), None);
    }

    #[test]
    fn a_page_hears_only_its_own_event_and_every_resync() {
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let change = |event| Feed::Seat { event, seat: Uuid::new_v4(), status: "HELD".into() };
        assert!(change(mine).for_event(mine).is_some());
        assert!(change(other).for_event(mine).is_none());
        assert!(Feed::Resync.for_event(mine).is_some());
    }
}
