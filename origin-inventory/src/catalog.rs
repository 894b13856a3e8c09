//! The public catalog: event listings, event details, seat maps. This is
//! what the edge caches, so responses carry the event's `catalog_version`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use wire::catalog::Event;
use wire::query::ListQuery;
use wire::room::RoomSettings;

use crate::error::ApiError;
use crate::events::EventStatus;
use crate::reservations::SeatStatus;

/// `GET /api/v1/events` as JSON (`data` and `meta`), from the database's
/// `catalog_list`, which the edge's Hyperdrive reads call too.
pub async fn list(db: &PgPool, query: &ListQuery) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT catalog_list($1, $2, $3, $4, $5, $6, $7) AS "list!""#,
        query.from,
        query.to,
        query.category.as_deref(),
        query.city.as_deref(),
        query.q.as_deref(),
        query.page as i32,
        query.limit as i32,
    )
    .fetch_one(db)
    .await
}

/// One public event as JSON, from the database's `catalog_event` (none if
/// it is not public).
async fn event_json(db: &PgPool, id: Uuid) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar!("SELECT catalog_event($1)", id).fetch_one(db).await
}

/// One public event as JSON, as the API serves it.
pub async fn event(db: &PgPool, id: Uuid) -> Result<serde_json::Value, ApiError> {
    event_json(db, id).await?.ok_or_else(|| ApiError::not_found("event"))
}

/// One public event, typed as the edge reads it.
pub async fn find_event(db: &PgPool, id: Uuid) -> Result<Option<Event>, ApiError> {
    event_json(db, id).await?.map(serde_json::from_value).transpose().map_err(ApiError::internal)
}

/// An event's waiting room as the database has it; served and published
/// as [`RoomSettings`].
struct RoomRow {
    event_id: Uuid,
    title: String,
    status: EventStatus,
    /// Nothing left to sell: every seat is booked or blocked (a live hold
    /// may still come back, so it does not count as sold).
    sold_out: bool,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    queue_enabled: bool,
    queue_paused: bool,
    new_users_per_minute: i32,
    total_active_users: i32,
    session_duration_seconds: i32,
    prequeue_starts_at: Option<DateTime<Utc>>,
    queue_pow_difficulty: i16,
    queue_message: String,
    queue_accent_color: String,
    /// The venue's: the waiting room shows the sale start in it.
    timezone: String,
}

impl From<RoomRow> for RoomSettings {
    fn from(row: RoomRow) -> Self {
        // The organizer API keeps these positive and the difficulty ≤ 24.
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        RoomSettings {
            event_id: row.event_id.to_string(),
            title: row.title,
            status: row.status.as_str().to_owned(),
            sold_out: row.sold_out,
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            enabled: row.queue_enabled,
            paused: row.queue_paused,
            new_users_per_minute: count(row.new_users_per_minute),
            total_active_users: count(row.total_active_users),
            session_duration_seconds: count(row.session_duration_seconds),
            prequeue_starts_at: row.prequeue_starts_at,
            pow_difficulty: u8::try_from(row.queue_pow_difficulty).unwrap_or(0),
            message: row.queue_message,
            accent_color: row.queue_accent_color,
            timezone: row.timezone,
        }
    }
}

/// The waiting rooms of public events: `only` that one, or else those
/// visitors may still poll (the sale not over for an hour).
///
/// A sale is sold out when no seat is free or held. The first such seat
/// is asked for in the order of the free seats' index, so Postgres finds it
/// there, or finds none, in a few buffers. Asked as `NOT EXISTS`, Postgres
/// may bet on meeting a free seat early in a scan of the whole table, and
/// for a sold-out sale reads all of it, each time the settings publisher
/// looks (every two seconds).
async fn waiting_rooms(db: &PgPool, only: Option<Uuid>) -> Result<Vec<RoomSettings>, sqlx::Error> {
    let rows = sqlx::query_as!(
        RoomRow,
        r#"SELECT e.id AS event_id, e.title, e.status AS "status: EventStatus",
                  e.status = 'sold_out' OR (
                      SELECT 1 FROM inventory i WHERE i.event_id = e.id AND i.status IN ('AVAILABLE', 'HELD')
                      ORDER BY i.section_id, i.sort_key LIMIT 1
                  ) IS NULL AS "sold_out!",
                  e.sale_starts_at, e.sale_ends_at, e.queue_enabled, e.queue_paused,
                  e.new_users_per_minute, e.total_active_users, e.session_duration_seconds,
                  e.prequeue_starts_at, e.queue_pow_difficulty, e.queue_message, e.queue_accent_color,
                  v.timezone
           FROM events e JOIN venues v ON v.id = e.venue_id
           WHERE e.status NOT IN ('draft', 'cancelled')
             AND CASE WHEN $1::uuid IS NULL
                      THEN e.sale_ends_at IS NULL OR e.sale_ends_at > now() - interval '1 hour'
                      ELSE e.id = $1 END"#,
        only,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(RoomSettings::from).collect())
}

/// The waiting room of a public event.
pub async fn waiting_room(db: &PgPool, id: Uuid) -> Result<Option<RoomSettings>, sqlx::Error> {
    Ok(waiting_rooms(db, Some(id)).await?.pop())
}

/// The waiting rooms visitors may still poll: public events whose sale has
/// not been over for an hour.
pub async fn live_waiting_rooms(db: &PgPool) -> Result<Vec<RoomSettings>, sqlx::Error> {
    waiting_rooms(db, None).await
}

#[derive(Debug, Serialize)]
pub struct SeatRow {
    pub id: Uuid,
    pub section_id: Uuid,
    pub section: String,
    pub general_admission: bool,
    pub row_label: String,
    pub number: i32,
    pub accessible: bool,
    pub tier: String,
    pub price_cents: i64,
    pub status: SeatStatus,
}

/// Every seat of the event by section and row. A lapsed hold shows as
/// available: the hold logic would hand it out.
pub async fn seats(db: &PgPool, event: Uuid) -> Result<Vec<SeatRow>, sqlx::Error> {
    sqlx::query_as!(
        SeatRow,
        r#"SELECT i.seat_id AS id, i.section_id, sec.name AS section, sec.general_admission, s.row_label, s.number,
                  s.accessible, t.name AS tier, i.price_cents,
                  CASE WHEN seat_is_free(i.status, i.held_until) THEN 'AVAILABLE' ELSE i.status END
                      AS "status!: SeatStatus"
           FROM inventory i
           JOIN seats s ON s.id = i.seat_id
           JOIN sections sec ON sec.id = i.section_id
           JOIN price_tiers t ON t.id = i.tier_id
           WHERE i.event_id = $1
           ORDER BY sec.position, s.row_label, s.number"#,
        event,
    )
    .fetch_all(db)
    .await
}
