//! Buyer sessions over HTTP: how apps and browsers get one.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::buyers::{BuyerSessions, IssuedSession, session_cookie};
use crate::error::ApiJson;
use crate::state::AppState;

/// Start a buyer session: the origin names a new buyer, answered as JSON
/// for apps (send `buyer_token` as a bearer token) and set as the
/// `stampede_buyer` cookie for browsers.
#[utoipa::path(post, path = "/api/v1/buyer-sessions", tag = "checkout", responses(
    (status = 201, body = IssuedSession, headers(("Set-Cookie" = String, description = "`stampede_buyer`, HttpOnly"))),
))]
async fn post_session(State(buyers): State<BuyerSessions>) -> Response {
    let session = buyers.issue(chrono::Utc::now().timestamp());
    let cookie = session_cookie(&session);
    (StatusCode::CREATED, [(header::SET_COOKIE, cookie)], ApiJson(session)).into_response()
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_session))
}
