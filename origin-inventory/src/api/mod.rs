//! The HTTP layer: handlers as a thin layer over the domain modules, the
//! access rules every checkout route passes, the HTML pages, and the one
//! router that serves them with its description.

pub mod access;
pub mod auth;
pub mod buyers;
pub mod catalog;
pub mod checkout;
pub mod events;
pub mod health;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod pages;
pub mod reservations;
pub mod sales;
pub mod venues;
pub mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate as _, SizeAbove};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, problems_everywhere};
use crate::state::AppState;

/// Every route of the origin, each with its description: every route is
/// registered through `utoipa_axum::routes!`, which takes its path and
/// method from the handler's `#[utoipa::path]`, so the router and the
/// document are one list and cannot drift.
fn routes() -> axum::Router<AppState> {
    let (routes, document) = OpenApiRouter::with_openapi(openapi::document())
        .merge(health::routes())
        .merge(catalog::routes())
        .merge(venues::routes())
        .merge(events::routes())
        .merge(reservations::routes())
        .merge(checkout::routes())
        .merge(orders::routes())
        .merge(webhooks::routes())
        .merge(sales::routes())
        .merge(auth::routes())
        .merge(access::routes())
        .merge(buyers::routes())
        .merge(metrics::routes())
        .merge(pages::routes())
        .split_for_parts();
    openapi::keep(document);
    routes
}

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes()
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(wire::MAX_REQUEST_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(axum::middleware::from_fn(problems_everywhere))
        // Pages and seat maps are large and repetitive. Event streams and
        // images are left as they are (the default predicate), and so are
        // the small answers of the order path: compressing them costs CPU
        // and saves nothing.
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = request.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
