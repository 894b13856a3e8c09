//! Paying for a hold over HTTP ([`crate::checkout`]).

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::session_ended;
use crate::api::access::{CommitOf, DeferredCheckout};
use crate::api::openapi::CheckoutRefusals;
use crate::checkout::{CommitBody, CommitRequest, commit, commit_at_once, saved_answer};
use crate::error::{ApiError, ApiJson, Problem};
use crate::metrics::{Operation, Outcome};
use crate::orders::OrderView;
use crate::state::AppState;

/// Pay for a hold and turn it into an order with tickets.
///
/// Idempotent by `Idempotency-Key`, a key per hold: the same key and body
/// answer the same result; a pending payment answers `503` until it settles.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/commit", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), request_body = CommitBody,
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "1 to 255 characters, one per payment attempt of this hold")),
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
    State(state): State<AppState>,
    checkout: DeferredCheckout<CommitOf>,
    headers: HeaderMap,
    body: Result<ApiJson<CommitBody>, ApiError>,
) -> Result<Response, ApiError> {
    let reservation = checkout.id();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()));
    // The payment's own statement checks the gate.
    if let (Some((buyer, gate)), Some(key), Ok(ApiJson(body))) = (checkout.provisional(), key, &body) {
        let started = Instant::now();
        let session = checkout.access_session();
        let request = CommitRequest { reservation, buyer, key, body, session };
        if let Some(answer) = commit_at_once(&state.warm, &state.payments, &request, gate).await.transpose() {
            let status = answer.as_ref().map_or_else(ApiError::status, |a| a.status);
            state.metrics.record(Operation::Commit, started, status);
            let answer = answer?;
            let ended = if answer.status == StatusCode::OK { checkout.ended_by_order() } else { None };
            return Ok((ended, answer).into_response());
        }
    }
    let checkout = checkout.check(&state).await?;
    let ApiJson(body) = body?;
    let key = key.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "send an Idempotency-Key header (1 to 255 characters)",
        )
    })?;
    let (db, metrics) = (&state.warm, &state.metrics);
    let buyer = checkout.buyer()?;
    if checkout.session_ended() {
        // The order ended this session; a retry may only hear its answer again.
        return match saved_answer(db, reservation, buyer, key, &body).await? {
            Some(answer) => Ok(answer.into_response()),
            None => {
                metrics.count(Outcome::AccessEnded);
                Err(session_ended())
            }
        };
    }
    let request = CommitRequest { reservation, buyer, key, body: &body, session: checkout.access_session() };
    let answer =
        metrics.observe(Operation::Commit, commit(db, &state.payments, &request), |a| a.status).await?;
    let ended = if answer.status == StatusCode::OK { checkout.ended_by_order() } else { None };
    Ok((ended, answer).into_response())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_commit))
}
