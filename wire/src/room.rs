//! An event's waiting-room settings as the origin serves them at
//! `GET /api/v1/events/{id}/waiting-room` and publishes them to the edge's
//! Redis ([`crate::names::room_settings_key`]): the same JSON either way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomSettings {
    pub event_id: String,
    pub title: String,
    /// The event's lifecycle status at the origin (`on_sale`, `sold_out`, ...).
    pub status: String,
    pub sold_out: bool,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub paused: bool,
    pub new_users_per_minute: u32,
    pub total_active_users: u32,
    pub session_duration_seconds: u32,
    pub prequeue_starts_at: Option<DateTime<Utc>>,
    /// Leading zero bits a join's proof of work needs; 0 turns it off.
    pub pow_difficulty: u8,
    /// Organizer text shown in the waiting room (plain text, escaped on output).
    pub message: String,
    /// Accent colour of the waiting room, `#rrggbb`.
    pub accent_color: String,
    /// The venue's time zone (IANA name): the page shows times there.
    /// Settings published before it existed read as UTC.
    #[serde(default = "utc")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".into()
}
