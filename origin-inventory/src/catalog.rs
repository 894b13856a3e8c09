//! The public catalog: event listings, event details, seat maps. This is
//! what the edge caches, so responses carry the event's `catalog_version`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{Checkout, EventId};
use crate::app::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};
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

/// List public events.
#[utoipa::path(get, path = "/api/v1/events", tag = "catalog", params(ListQuery), responses(
    (status = 200, body = edge_core::catalog::EventList, description = "Events and paging meta"),
    (status = 400, body = Problem, description = "`invalid_query`: unknown parameter, unreadable value, page or limit out of range"),
))]
async fn get_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    Ok(ApiJson(list(&state.db, &query).await?))
}

/// One public event.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "catalog", params(("id" = Uuid, Path)), responses(
    (status = 200, body = edge_core::catalog::Event),
    (status = 404, body = Problem, description = "Unknown or unpublished"),
))]
async fn get_event(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    Ok(ApiJson(event(&state.db, id).await?))
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

/// The event's waiting-room settings.
///
/// Public: the edge reads them when the origin has not published them to
/// its Redis.
#[utoipa::path(get, path = "/api/v1/events/{id}/waiting-room", tag = "queue", params(("id" = Uuid, Path)), responses(
    (status = 200, body = WaitingRoom),
    (status = 404, body = Problem, description = "Unknown event"),
))]
async fn get_waiting_room(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<WaitingRoom>, ApiError> {
    let room = waiting_room(&state.db, id).await?.ok_or_else(|| ApiError::not_found("event"))?;
    Ok(ApiJson(room))
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

/// The seat map: sections, rows and seats with status and price.
///
/// Its `ETag` changes with any seat's status; send it back in
/// `If-None-Match` to hear `304` instead of the whole map again.
#[utoipa::path(get, path = "/api/v1/events/{id}/seatmap", tag = "catalog", params(("id" = Uuid, Path)),
    security(("accessToken" = []), ("buyerSession" = [])), responses(
    (status = 200, body = SeatMap, headers(("ETag" = String))),
    (status = 304, description = "Unchanged since the `ETag` sent"),
    (status = 401, body = Problem, description = "`access_token_required`, `invalid_access_token`, `access_session_ended` or `buyer_session_required`"),
    (status = 403, body = Problem, description = "`access_token_wrong_event`"),
    (status = 404, body = Problem, description = "Unknown event"),
))]
async fn get_seatmap(
    State(state): State<AppState>,
    checkout: Checkout<EventId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = checkout.event;
    let event = event(&state.db, id).await?;
    let seats = seats(&state.db, id).await?;
    let sections = seat_map(&seats);
    let etag = format!("\"{:x}\"", fnv1a(&serde_json::to_string(&sections).expect("a seat map serializes")));
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let currency = event["price_range"]["currency"].as_str().map(str::to_owned);
    let map = SeatMap { event_id: id, currency, last_updated: Utc::now(), sections };
    let mut response = ApiJson(map).into_response();
    response.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /api/v1/events/{id}/seatmap`.
#[derive(Serialize, ToSchema)]
pub struct SeatMap {
    event_id: Uuid,
    currency: Option<String>,
    last_updated: DateTime<Utc>,
    sections: Vec<SectionMap>,
}

#[derive(Serialize, ToSchema)]
pub struct SectionMap {
    id: Uuid,
    name: String,
    /// Standing: places are numbered, not in rows of seats.
    general_admission: bool,
    rows: Vec<RowMap>,
}

#[derive(Serialize, ToSchema)]
pub struct RowMap {
    label: String,
    seats: Vec<SeatOnMap>,
}

#[derive(Serialize, ToSchema)]
pub struct SeatOnMap {
    id: Uuid,
    number: i32,
    /// `AVAILABLE`, `HELD`, `SOLD` or `BLOCKED`.
    status: String,
    tier: String,
    price_cents: i64,
    /// A wheelchair place.
    accessible: bool,
}

fn seat_map(seats: &[SeatRow]) -> Vec<SectionMap> {
    seats
        .chunk_by(|a, b| a.section_id == b.section_id)
        .map(|section| SectionMap {
            id: section[0].section_id,
            name: section[0].section.clone(),
            general_admission: section[0].general_admission,
            rows: section
                .chunk_by(|a, b| a.row_label == b.row_label)
                .map(|row| RowMap {
                    label: row[0].row_label.clone(),
                    seats: row
                        .iter()
                        .map(|s| SeatOnMap {
                            id: s.id,
                            number: s.number,
                            status: s.status.clone(),
                            tier: s.tier.clone(),
                            price_cents: s.price_cents,
                            accessible: s.accessible,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// A stable content hash for ETags (FNV-1a over the JSON text).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_list))
        .routes(routes!(get_event))
        .routes(routes!(get_seatmap))
        .routes(routes!(get_waiting_room))
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
