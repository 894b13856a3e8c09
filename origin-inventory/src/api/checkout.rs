//! Paying for a hold over HTTP ([`crate::checkout`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::session_ended;
use crate::api::access::{Checkout, CommitOf};
use crate::api::openapi::CheckoutRefusals;
use crate::checkout::{CommitBody, CommitRequest, commit, saved_answer};
use crate::error::{ApiError, ApiJson, Problem};
use crate::metrics::{Metrics, Operation, Outcome};
use crate::orders::OrderView;
use crate::payments::Payments;
use crate::state::AppState;

/// Pay for a hold and turn it into an order with tickets.
///
/// Idempotent by `Idempotency-Key`: the same key and body answer the same
/// result; a pending payment answers `503` until it settles.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/commit", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), request_body = CommitBody,
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "1 to 255 characters, one per payment attempt")),
    responses(
    (status = 200, body = OrderView, description = "The order with its tickets"),
    (status = 400, body = Problem, description = "`idempotency_key_required`"),
    (status = 402, body = Problem, description = "`payment_failed`: the card was declined; the hold stays"),
    (status = 404, body = Problem, description = "Unknown, or another buyer's"),
    (status = 409, body = Problem, description = "`already_committed` or `commit_in_progress`"),
    (status = 410, body = Problem, description = "`reservation_expired`"),
    (status = 422, body = Problem, description = "`invalid_request`, or `idempotency_key_reused` with another body"),
    (status = 503, body = Problem, description = "`payment_pending`: retry with the same key (`Retry-After`)"),
    CheckoutRefusals,
))]
async fn post_commit(
    State(db): State<PgPool>,
    State(payments): State<Payments>,
    State(metrics): State<Arc<Metrics>>,
    checkout: Checkout<CommitOf>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CommitBody>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "send an Idempotency-Key header (1 to 255 characters)",
            )
        })?;
    let (reservation, buyer) = (checkout.target.0, checkout.buyer()?);
    if checkout.session_ended() {
        // The order ended this session; a retry may only hear its answer again.
        return match saved_answer(&db, reservation, key, &body).await? {
            Some(answer) => Ok(answer.into_response()),
            None => {
                metrics.count(Outcome::AccessEnded);
                Err(session_ended())
            }
        };
    }
    let request = CommitRequest { reservation, buyer, key, body: &body };
    let answer = metrics.observe(Operation::Commit, commit(&db, &payments, &request), |a| a.status).await?;
    let ended = if answer.status == StatusCode::OK { checkout.end_session(&db).await? } else { None };
    Ok((ended, answer).into_response())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_commit))
}
