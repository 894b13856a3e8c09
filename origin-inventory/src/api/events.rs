//! The organizer's events over HTTP: create, list, change settings and
//! waiting-room settings, publish, close, cancel. Every change purges the
//! edge's copy of the event.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth::Organizer;
use crate::api::openapi::OrganizerRefusals;
use crate::error::{ApiError, ApiJson, ApiPath, Problem, created};
use crate::events::{
    EventPatch, EventSettings, NewEvent, OrganizerEvent, QueuePatch, StatusAction, change_status,
    create_event, fetch_event, organizer_events, update_settings,
};
use crate::purge::CatalogPurge;
use crate::state::AppState;

/// Create a draft event: one inventory row per seat of the venue.
#[utoipa::path(post, path = "/api/v1/organizer/events", tag = "organizer", security(("organizerKey" = [])),
    request_body = NewEvent, responses(
    (status = 201, body = OrganizerEvent, headers(("Location" = String, description = "The event's address"))),
    (status = 404, body = Problem, description = "Unknown venue"),
    (status = 422, body = Problem, description = "`invalid_request`"),
    OrganizerRefusals,
))]
async fn post_event(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiJson(new): ApiJson<NewEvent>,
) -> Result<Response, ApiError> {
    let event = create_event(&db, organizer, new).await?;
    Ok(created(format!("/api/v1/organizer/events/{}", event.id), event))
}

/// Your events, by start.
#[derive(Serialize, ToSchema)]
pub struct OrganizerEvents {
    data: Vec<OrganizerEvent>,
}

/// Your events.
#[utoipa::path(get, path = "/api/v1/organizer/events", tag = "organizer", security(("organizerKey" = [])),
    responses((status = 200, body = OrganizerEvents), OrganizerRefusals))]
async fn list_events(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
) -> Result<ApiJson<OrganizerEvents>, ApiError> {
    Ok(ApiJson(OrganizerEvents { data: organizer_events(&db, organizer).await? }))
}

/// One of your events.
#[utoipa::path(get, path = "/api/v1/organizer/events/{id}", tag = "organizer", security(("organizerKey" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, body = OrganizerEvent),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    OrganizerRefusals,
))]
async fn get_event(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<OrganizerEvent>, ApiError> {
    Ok(ApiJson(fetch_event(&db, organizer, id).await?))
}

/// Change an event's settings (the fields sent); bumps `catalog_version`
/// and purges the edge's pages.
#[utoipa::path(patch, path = "/api/v1/organizer/events/{id}", tag = "organizer", security(("organizerKey" = [])),
    params(("id" = Uuid, Path)), request_body = EventPatch, responses(
    (status = 200, body = OrganizerEvent),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    (status = 422, body = Problem, description = "`invalid_request`"),
    OrganizerRefusals,
))]
async fn patch_event(
    State(db): State<PgPool>,
    State(purge): State<CatalogPurge>,
    Organizer(organizer): Organizer,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<EventPatch>,
) -> Result<ApiJson<OrganizerEvent>, ApiError> {
    let event = update_settings(&db, organizer, id, |s| patch.apply(s)).await?;
    purge.event_changed(&db, id).await;
    Ok(ApiJson(event))
}

/// Change waiting-room settings: the fields sent change, the others stay
/// (`PUT` and `PATCH` alike). The edge hears the change at once.
#[utoipa::path(method(put, patch), path = "/api/v1/organizer/events/{id}/queue", tag = "organizer",
    security(("organizerKey" = [])), params(("id" = Uuid, Path)), request_body = QueuePatch, responses(
    (status = 200, body = OrganizerEvent),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    (status = 422, body = Problem, description = "`invalid_request`"),
    OrganizerRefusals,
))]
async fn change_queue(
    State(db): State<PgPool>,
    State(purge): State<CatalogPurge>,
    Organizer(organizer): Organizer,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(change): ApiJson<QueuePatch>,
) -> Result<ApiJson<OrganizerEvent>, ApiError> {
    let event =
        update_settings(&db, organizer, id, |s| EventSettings { queue: change.apply(s.queue.clone()), ..s })
            .await?;
    purge.event_changed(&db, id).await;
    Ok(ApiJson(event))
}

/// Publish, close or cancel an event.
#[utoipa::path(post, path = "/api/v1/organizer/events/{id}/{action}", tag = "organizer",
    security(("organizerKey" = [])), params(("id" = Uuid, Path), ("action" = inline(StatusAction), Path)), responses(
    (status = 200, body = OrganizerEvent),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    (status = 409, body = Problem, description = "`invalid_status_transition`, e.g. publishing an event already on sale"),
    OrganizerRefusals,
))]
async fn post_status(
    State(db): State<PgPool>,
    State(purge): State<CatalogPurge>,
    Organizer(organizer): Organizer,
    ApiPath((id, action)): ApiPath<(Uuid, StatusAction)>,
) -> Result<ApiJson<OrganizerEvent>, ApiError> {
    let event = change_status(&db, organizer, id, action).await?;
    purge.event_changed(&db, id).await;
    Ok(ApiJson(event))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_event, list_events))
        .routes(routes!(get_event, patch_event))
        .routes(routes!(change_queue))
        .routes(routes!(post_status))
}
