//! Live seat maps over HTTP: one event's share of the seat-change feed
//! ([`crate::live`]) as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast;

use crate::api::access::{Checkout, EventId};
use crate::api::openapi::CheckoutRefusals;
use crate::error::Problem;
use crate::live::{Feed, SeatChanges};

/// A stream ends after this long and the browser reconnects (after
/// [`RECONNECT`]): an edge that limits request time never cuts one off
/// mid-event, and no instance is pinned for good.
const STREAM_LIFETIME: Duration = Duration::from_secs(45);
const RECONNECT: Duration = Duration::from_secs(1);

/// Live seat changes of one event's seat map, as server-sent events:
/// `seat` ("<seat id> <STATUS>") and `resync` (refetch the map).
#[utoipa::path(get, path = "/events/{id}/checkout/seat-changes", tag = "pages",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, content_type = "text/event-stream", description = "The stream; it ends after a while and the page reconnects"),
    (status = 404, body = Problem, description = "No such event"),
    CheckoutRefusals,
))]
pub async fn seat_changes(
    State(seat_changes): State<SeatChanges>,
    checkout: Checkout<EventId>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let event = checkout.event;
    let feed = seat_changes.subscribe().await;
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
