//! The organizer's view of sales over HTTP: a summary per event, refunds.

use axum::extract::State;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth::Organizer;
use crate::api::openapi::OrganizerRefusals;
use crate::error::{ApiError, ApiJson, ApiPath, Problem};
use crate::orders::OrderView;
use crate::payments::Payments;
use crate::sales::{SalesSummary, summary};
use crate::settlement::refund_order;
use crate::state::AppState;

/// An event's sales: orders, revenue, seats by state and per section, and
/// orders per minute over the last 30 minutes.
#[utoipa::path(get, path = "/api/v1/organizer/events/{id}/sales", tag = "organizer", security(("organizerKey" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, body = SalesSummary),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    OrganizerRefusals,
))]
async fn get_sales(
    State(db): State<PgPool>,
    Organizer(organizer): Organizer,
    ApiPath(event): ApiPath<Uuid>,
) -> Result<ApiJson<SalesSummary>, ApiError> {
    summary(&db, organizer, event).await?.map(ApiJson).ok_or_else(|| ApiError::not_found("event"))
}

/// Refund an order in full and put its seats back on sale.
#[utoipa::path(post, path = "/api/v1/organizer/orders/{number}/refund", tag = "organizer",
    security(("organizerKey" = [])), params(("number" = String, Path)), responses(
    (status = 200, body = OrderView, description = "The refunded order"),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    (status = 409, body = Problem, description = "`already_refunded`"),
    (status = 502, body = Problem, description = "`refund_failed`: the payment provider refused; nothing changed"),
    OrganizerRefusals,
))]
async fn post_refund(
    State(db): State<PgPool>,
    State(payments): State<Payments>,
    Organizer(organizer): Organizer,
    ApiPath(number): ApiPath<String>,
) -> Result<ApiJson<OrderView>, ApiError> {
    Ok(ApiJson(refund_order(&db, &payments, organizer, &number).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_sales)).routes(routes!(post_refund))
}
