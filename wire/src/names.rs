//! Names the edge and the origin must spell alike.

/// Access tokens travel in a cookie named this prefix plus the event id
/// (or as a bearer token); the edge sets it, edge and origin read it.
pub const ACCESS_COOKIE_PREFIX: &str = "stampede_access_";

/// The origin's answer header saying a checkout session is over (order
/// placed, hold released); its value is the event id. The edge consumes it
/// and frees the visitor's slot.
pub const SESSION_ENDED_HEADER: &str = "stampede-session-ended";

/// The Redis key of the catalog's version: the origin bumps it when an
/// organizer changes an event, and every page the edge keeps is checked
/// against it.
pub const CATALOG_VERSION_KEY: &str = "catalog:version";

/// The start of every Redis key of one event's waiting room. The event sits
/// in a `{hash tag}`, so a Redis Cluster keeps an event's keys in one slot
/// and the scripts that touch several of them stay atomic.
pub fn event_key_prefix(event_id: &str) -> String {
    format!("q:{{{event_id}}}")
}

/// Where the origin publishes an event's waiting-room settings
/// ([`crate::room::RoomSettings`] as JSON) for the edge to read.
pub fn room_settings_key(event_id: &str) -> String {
    settings_key_under(&event_key_prefix(event_id))
}

/// The settings key below an event's [`event_key_prefix`].
pub fn settings_key_under(prefix: &str) -> String {
    format!("{prefix}:settings")
}
