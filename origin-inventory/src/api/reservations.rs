//! Holds over HTTP: take seats, read a hold, release it, extend it.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::GateCheck;
use crate::api::access::{Checkout, DeferredCheckout, EventId, ReservationId};
use crate::api::openapi::CheckoutRefusals;
use crate::error::{ApiError, ApiJson, Problem};
use crate::holds::HoldBody;
use crate::metrics::Operation;
use crate::reservations::{ExtendBody, HoldError, Reservation, extend, hold, live_hold, load, release};
use crate::state::AppState;

/// Hold seats: chosen ones, or the best available of a section or tier.
///
/// Seats are taken by compare-and-swap; a hold lapses after the event's
/// hold time unless paid.
#[utoipa::path(post, path = "/api/v1/events/{id}/reservations", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), request_body = HoldBody,
    responses(
    (status = 201, body = Reservation, headers(("Location" = String, description = "The reservation's address"))),
    (status = 200, body = Reservation, description = "The same `client_reservation_id` again: the hold it made"),
    (status = 404, body = Problem, description = "Unknown event"),
    (status = 409, body = Problem, description = "`seat_unavailable` (with `seat_ids`) or `sale_not_open`"),
    (status = 422, body = Problem, description = "`invalid_request`, `unknown_seats`, or more than the per-order limit"),
    (status = 429, body = Problem, description = "`limit_exceeded`: the buyer's limit for the event"),
    CheckoutRefusals,
))]
async fn post_hold(
    State(state): State<AppState>,
    checkout: DeferredCheckout<EventId>,
    body: Result<ApiJson<HoldBody>, ApiError>,
) -> Result<Held, ApiError> {
    let (db, limits, metrics) = (&state.warm, &state.hold_limits, &state.metrics);
    if let (Some((buyer, gate)), Ok(ApiJson(body))) = (checkout.provisional(), &body) {
        let started = Instant::now();
        match hold(db, limits, checkout.id(), buyer, body.clone(), gate).await {
            Err(HoldError::NeedsGate) => {}
            held => {
                let answer = held.map(held_answer).map_err(ApiError::from);
                metrics.record(
                    Operation::Hold,
                    started,
                    answer.as_ref().map_or_else(ApiError::status, |a| a.0),
                );
                return answer;
            }
        }
    }
    let checkout = checkout.check(&state).await?;
    let ApiJson(body) = body?;
    let buyer = checkout.buyer()?;
    let answer =
        async { Ok(held_answer(hold(db, limits, checkout.event, buyer, body, GateCheck::Passed).await?)) };
    metrics.observe(Operation::Hold, answer, |(status, _, _)| *status).await
}

type Held = (StatusCode, [(HeaderName, String); 1], ApiJson<Reservation>);

/// 201 with the new hold's address, or 200 with the hold a repeated request made.
fn held_answer((reservation, created): (Reservation, bool)) -> Held {
    (
        if created { StatusCode::CREATED } else { StatusCode::OK },
        [(header::LOCATION, format!("/api/v1/reservations/{}", reservation.reservation_id))],
        ApiJson(reservation),
    )
}

/// One of your reservations.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, body = Reservation),
    (status = 404, body = Problem, description = "Unknown, or another buyer's"),
    CheckoutRefusals,
))]
async fn get_reservation(
    State(db): State<PgPool>,
    checkout: Checkout<ReservationId>,
) -> Result<ApiJson<Reservation>, ApiError> {
    load(&db, checkout.target.0, checkout.buyer()?)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("reservation"))
}

/// Your running hold on the event: what a reloaded checkout page shows.
#[utoipa::path(get, path = "/api/v1/events/{id}/reservations/current", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, body = Reservation),
    (status = 404, body = Problem, description = "`no_live_hold`, or no such event"),
    CheckoutRefusals,
))]
async fn get_current_hold(
    State(db): State<PgPool>,
    checkout: Checkout<EventId>,
) -> Result<ApiJson<Reservation>, ApiError> {
    live_hold(&db, checkout.event, checkout.buyer()?).await?.map(ApiJson).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_live_hold", "you hold no seats for this event")
    })
}

/// Release a hold: its seats are free again, and a waiting-room session
/// ends.
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Released (also when it was already)"),
    (status = 404, body = Problem, description = "Unknown, or another buyer's"),
    (status = 409, body = Problem, description = "`already_committed` or `commit_in_progress`"),
    CheckoutRefusals,
))]
async fn delete_reservation(
    State(db): State<PgPool>,
    checkout: Checkout<ReservationId>,
) -> Result<impl IntoResponse, ApiError> {
    release(&db, checkout.target.0, checkout.buyer()?).await?;
    Ok((checkout.end_session(&db).await?, StatusCode::NO_CONTENT))
}

/// Extend a hold, once, by up to 300 s.
#[utoipa::path(patch, path = "/api/v1/reservations/{id}/extend", tag = "checkout",
    security(("accessToken" = []), ("buyerSession" = [])), params(("id" = Uuid, Path)), request_body = ExtendBody,
    responses(
    (status = 200, body = Reservation),
    (status = 404, body = Problem, description = "Unknown, or another buyer's"),
    (status = 409, body = Problem, description = "`already_extended`"),
    (status = 410, body = Problem, description = "`reservation_expired`"),
    (status = 422, body = Problem, description = "`invalid_request`"),
    CheckoutRefusals,
))]
async fn patch_extend(
    State(db): State<PgPool>,
    checkout: Checkout<ReservationId>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<ApiJson<Reservation>, ApiError> {
    Ok(ApiJson(extend(&db, checkout.target.0, checkout.buyer()?, body.additional_seconds).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_hold))
        .routes(routes!(get_current_hold))
        .routes(routes!(get_reservation, delete_reservation))
        .routes(routes!(patch_extend))
}
