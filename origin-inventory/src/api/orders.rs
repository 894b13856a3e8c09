//! Orders and tickets over HTTP: a buyer's own order, an order behind its
//! secret link, a ticket's QR code.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::AccessKeys;
use crate::buyers::BuyerSessions;
use crate::error::{ApiError, ApiJson, ApiPath, Problem};
use crate::orders::{OrderView, readable_order, ticket_is_live};
use crate::qr::qr_svg;
use crate::state::AppState;

/// Your own order with its tickets: a buyer session, or an access token of
/// the order's event naming you.
#[utoipa::path(get, path = "/api/v1/orders/{number}", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("number" = String, Path)), responses(
    (status = 200, body = OrderView),
    (status = 404, body = Problem, description = "Unknown, or not yours"),
))]
async fn get_order(
    State(db): State<PgPool>,
    State(buyers): State<BuyerSessions>,
    State(access): State<AccessKeys>,
    ApiPath(number): ApiPath<String>,
    headers: HeaderMap,
) -> Result<ApiJson<OrderView>, ApiError> {
    readable_order(&db, &buyers, &access, &number, None, &headers)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// An order behind its secret link (`order_url`): no session needed.
#[utoipa::path(get, path = "/api/v1/orders/{number}/{secret}", tag = "checkout",
    params(("number" = String, Path), ("secret" = String, Path)), responses(
    (status = 200, body = OrderView),
    (status = 404, body = Problem, description = "Unknown order or wrong secret"),
))]
async fn get_order_by_link(
    State(db): State<PgPool>,
    State(buyers): State<BuyerSessions>,
    State(access): State<AccessKeys>,
    ApiPath((number, secret)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<ApiJson<OrderView>, ApiError> {
    readable_order(&db, &buyers, &access, &number, Some(&secret), &headers)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// The QR code of a live ticket: the code is the credential.
#[utoipa::path(get, path = "/api/v1/tickets/{code}/qr.svg", tag = "checkout", params(("code" = String, Path)),
    responses(
    (status = 200, content_type = "image/svg+xml", description = "The code as a QR image"),
    (status = 404, body = Problem, description = "Unknown or voided ticket"),
))]
async fn get_ticket_qr(
    State(db): State<PgPool>,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !ticket_is_live(&db, &code).await? {
        return Err(ApiError::not_found("ticket"));
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], qr_svg(&code)).into_response())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_order))
        .routes(routes!(get_order_by_link))
        .routes(routes!(get_ticket_qr))
}
