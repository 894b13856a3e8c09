//! The public catalog: event listings, event details, seat maps. This is
//! what the edge caches, so responses carry the event's `catalog_version`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::{EventStatus, QueueSettings};

/// Query parameters of `GET /api/v1/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Events starting at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events starting at or before this time.
    pub to: Option<DateTime<Utc>>,
    pub category: Option<String>,
    pub city: Option<String>,
    /// Words in the title or description (at most 100 characters).
    pub q: Option<String>,
    /// From 1 (the default) to 10000.
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<u32>,
    /// From 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

pub const MAX_PAGE_SIZE: u32 = 100;

impl ListQuery {
    /// `(limit, offset)` after checking bounds.
    pub fn paging(&self) -> Result<(u32, u32), String> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(20);
        if page == 0 || page > 10_000 {
            return Err("page must be between 1 and 10000".into());
        }
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(format!("limit must be between 1 and {MAX_PAGE_SIZE}"));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && to < from
        {
            return Err("`to` must not be before `from`".into());
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            return Err("q must be at most 100 characters".into());
        }
        Ok((limit, (page - 1) * limit))
    }
}

/// Which events the public sees (as the `catalog_events` view does).
const PUBLIC: &str = "e.status NOT IN ('draft', 'cancelled')";

/// `GET /api/v1/events` as JSON (`data` and `meta`), from the database's
/// `catalog_list`, which the edge's Hyperdrive reads call too.
pub async fn list(db: &PgPool, query: &ListQuery) -> Result<serde_json::Value, ApiError> {
    let (limit, offset) = query.paging().map_err(ApiError::invalid_query)?;
    let page = (offset / limit + 1) as i32;
    let list = sqlx::query_scalar("SELECT catalog_list($1, $2, $3, $4, $5, $6, $7)")
        .bind(query.from)
        .bind(query.to)
        .bind(&query.category)
        .bind(&query.city)
        .bind(&query.q)
        .bind(page)
        .bind(limit as i32)
        .fetch_one(db)
        .await?;
    Ok(list)
}

/// One public event as JSON, from the database's `catalog_event`.
pub async fn event(db: &PgPool, id: Uuid) -> Result<serde_json::Value, ApiError> {
    find_event(db, id).await?.ok_or_else(|| ApiError::not_found("event"))
}

pub async fn find_event(db: &PgPool, id: Uuid) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT catalog_event($1)").bind(id).fetch_one(db).await
}

/// What the edge's waiting room needs to know about an event: served at
/// `GET /api/v1/events/{id}/waiting-room` and published to the edge's Redis
/// (`purge`), the same JSON either way.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct WaitingRoom {
    event_id: Uuid,
    title: String,
    status: EventStatus,
    /// Nothing left to sell: every seat is booked or blocked (a live hold
    /// may still come back, so it does not count as sold).
    sold_out: bool,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    #[serde(flatten)]
    queue: QueueSettings,
    /// The venue's: the waiting room shows the sale start in it.
    timezone: String,
}

impl WaitingRoom {
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }
}

fn waiting_rooms_where(condition: &str) -> String {
    format!(
        "SELECT e.id AS event_id, e.title, e.status,
                e.status = 'sold_out' OR NOT EXISTS (
                    SELECT 1 FROM inventory i WHERE i.event_id = e.id AND i.status IN ('AVAILABLE', 'HELD')
                ) AS sold_out,
                e.sale_starts_at, e.sale_ends_at, e.queue_enabled, e.queue_paused,
                e.new_users_per_minute, e.total_active_users, e.session_duration_seconds,
                e.prequeue_starts_at, e.queue_pow_difficulty, e.queue_message, e.queue_accent_color,
                v.timezone
         FROM events e JOIN venues v ON v.id = e.venue_id WHERE {PUBLIC} AND {condition}"
    )
}

/// The waiting room of a public event.
pub async fn waiting_room(db: &PgPool, id: Uuid) -> Result<Option<WaitingRoom>, sqlx::Error> {
    sqlx::query_as(&waiting_rooms_where("e.id = $1")).bind(id).fetch_optional(db).await
}

/// The waiting rooms visitors may still poll: public events whose sale has
/// not been over for an hour.
pub async fn live_waiting_rooms(db: &PgPool) -> Result<Vec<WaitingRoom>, sqlx::Error> {
    sqlx::query_as(&waiting_rooms_where(
        "(e.sale_ends_at IS NULL OR e.sale_ends_at > now() - interval '1 hour')",
    ))
    .fetch_all(db)
    .await
}

#[derive(Debug, Serialize, sqlx::FromRow)]
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
    pub status: String,
}

/// Every seat of the event by section and row. A lapsed hold shows as
/// available: the hold logic would hand it out.
pub async fn seats(db: &PgPool, event: Uuid) -> Result<Vec<SeatRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.seat_id AS id, i.section_id, sec.name AS section, sec.general_admission, s.row_label, s.number,
                s.accessible, t.name AS tier, i.price_cents,
                CASE WHEN seat_is_free(i.status, i.held_until) THEN 'AVAILABLE' ELSE i.status END AS status
         FROM inventory i
         JOIN seats s ON s.id = i.seat_id
         JOIN sections sec ON sec.id = i.section_id
         JOIN price_tiers t ON t.id = i.tier_id
         WHERE i.event_id = $1
         ORDER BY sec.position, s.row_label, s.number",
    )
    .bind(event)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(ListQuery::default().paging(), Ok((20, 0)));
        let q = ListQuery { page: Some(3), limit: Some(10), ..Default::default() };
        assert_eq!(q.paging(), Ok((10, 20)));
        for bad in [
            ListQuery { page: Some(0), ..Default::default() },
            ListQuery { limit: Some(101), ..Default::default() },
            ListQuery { q: Some("x".repeat(101)), ..Default::default() },
            ListQuery {
                from: Some("2027-01-02T00:00:00Z".parse().unwrap()),
                to: Some("2027-01-01T00:00:00Z".parse().unwrap()),
                ..Default::default()
            },
        ] {
            assert!(bad.paging().is_err(), "{bad:?}");
        }
    }
}
