//! The public catalog over HTTP: listings, events, waiting-room settings
//! and seat maps (with an `ETag` that changes with any seat's status).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::access::{Checkout, EventId};
use wire::catalog::{Event, EventList};
use wire::query::ListQuery;
use wire::room::RoomSettings;

use crate::catalog::{SeatRow, event, find_event, list, seats, waiting_room};
use crate::error::{ApiError, ApiJson, ApiPath, Problem};
use crate::reservations::SeatStatus;
use crate::state::AppState;

/// List public events.
#[utoipa::path(get, path = "/api/v1/events", tag = "catalog", params(ListQuery), responses(
    (status = 200, body = EventList, description = "Events and paging meta"),
    (status = 400, body = Problem, description = "`invalid_query`: unknown parameter, unreadable value, page or limit out of range"),
))]
async fn get_list(
    State(db): State<PgPool>,
    RawQuery(raw): RawQuery,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    // The edge's own parser: the same parameters, bounds and refusals.
    let query =
        ListQuery::parse(raw.as_deref().unwrap_or("")).map_err(|e| ApiError::invalid_query(e.to_string()))?;
    Ok(ApiJson(list(&db, &query).await?))
}

/// One public event.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "catalog", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Event),
    (status = 404, body = Problem, description = "Unknown or unpublished"),
))]
async fn get_event(
    State(db): State<PgPool>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    Ok(ApiJson(event(&db, id).await?))
}

/// The event's waiting-room settings.
///
/// Public: the edge reads them when the origin has not published them to
/// its Redis.
#[utoipa::path(get, path = "/api/v1/events/{id}/waiting-room", tag = "queue", params(("id" = Uuid, Path)), responses(
    (status = 200, body = RoomSettings),
    (status = 404, body = Problem, description = "Unknown event"),
))]
async fn get_waiting_room(
    State(db): State<PgPool>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<RoomSettings>, ApiError> {
    let room = waiting_room(&db, id).await?.ok_or_else(|| ApiError::not_found("event"))?;
    Ok(ApiJson(room))
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
    State(db): State<PgPool>,
    checkout: Checkout<EventId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = checkout.event;
    let event = find_event(&db, id).await?.ok_or_else(|| ApiError::not_found("event"))?;
    let seats = seats(&db, id).await?;
    let sections = seat_map(&seats);
    let etag = format!("\"{:x}\"", fnv1a(&serde_json::to_string(&sections).expect("a seat map serializes")));
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let currency = event.price_range.currency;
    let map = SeatMap { event_id: id, currency, last_updated: Utc::now(), sections };
    let mut response = ApiJson(map).into_response();
    response.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A stable content hash for ETags (FNV-1a over the JSON text).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
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
    status: SeatStatus,
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
                            status: s.status,
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

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_list))
        .routes(routes!(get_event))
        .routes(routes!(get_seatmap))
        .routes(routes!(get_waiting_room))
}
