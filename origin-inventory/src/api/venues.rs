//! The organizer's venues over HTTP.

use axum::extract::State;
use axum::response::Response;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth::Organizer;
use crate::api::openapi::OrganizerRefusals;
use crate::error::{ApiError, ApiJson, ApiPath, Problem, created};
use crate::state::AppState;
use crate::venues::{VenueCreated, VenueSpec, VenueSummary, create_venue, venue_summary};

/// Create a venue with its whole seat map: price tiers, then sections of
/// rows (label, seat count) or a standing capacity.
#[utoipa::path(post, path = "/api/v1/organizer/venues", tag = "organizer", security(("organizerKey" = [])),
    request_body = VenueSpec, responses(
    (status = 201, body = VenueCreated, headers(("Location" = String, description = "The venue's address"))),
    (status = 422, body = Problem, description = "`invalid_request`: the seat map does not add up"),
    OrganizerRefusals,
))]
async fn post_venue(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiJson(spec): ApiJson<VenueSpec>,
) -> Result<Response, ApiError> {
    let venue = create_venue(&db, organizer, &spec).await?;
    Ok(created(format!("/api/v1/organizer/venues/{}", venue.id), venue))
}

/// One of your venues.
#[utoipa::path(get, path = "/api/v1/organizer/venues/{id}", tag = "organizer", security(("organizerKey" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, body = VenueSummary),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    OrganizerRefusals,
))]
async fn get_venue(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<VenueSummary>, ApiError> {
    venue_summary(&db, organizer, id).await?.map(ApiJson).ok_or_else(|| ApiError::not_found("venue"))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_venue)).routes(routes!(get_venue))
}
