//! The one error type handlers return, and its JSON problem format:
//! `{"error": "<stable_code>", "message": "<for humans>", ...details}`.
//! Internal causes are never sent to clients: the answer carries them in
//! its extensions and [`problems_everywhere`] logs them, once, inside the
//! request's span (as axum's error-handling example does).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use wire::names::SESSION_ENDED_HEADER;

use crate::text::{self, TextError};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Map<String, Value>,
    /// Seconds a client should wait before retrying (`Retry-After`).
    retry_after: Option<u32>,
    /// What went wrong inside, for the log only.
    cause: Option<String>,
    /// The event whose waiting-room session this refusal found ended:
    /// the answer tells the edge (`Stampede-Session-Ended`).
    session_ended: Option<uuid::Uuid>,
}

/// An internal error's cause, riding on its response to the logging
/// middleware.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
            cause: None,
            session_ended: None,
        }
    }

    /// Adds a machine-readable field next to `error` and `message`.
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.details.insert(key.to_owned(), json!(value));
        self
    }

    /// Asks the client to come back after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Tells the edge that the refused token's session of `event` has
    /// ended: it answers with the waiting room instead.
    pub fn session_ended(mut self, event: uuid::Uuid) -> Self {
        self.session_ended = Some(event);
        self
    }

    /// Postgres cannot be reached, or is restarting: the request may well
    /// succeed in a moment.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable, retry shortly",
        )
        .retry_after(1)
    }

    /// A query string the endpoint cannot use: 400, for every reason alike.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side",
        );
        Self { cause: Some(cause.to_string()), ..error }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("database pool exhausted");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "too busy right now, retry shortly")
                    .retry_after(1)
            }
            _ if is_connection_fault(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::database_unavailable()
            }
            _ => Self::internal(e),
        }
    }
}

/// Errors that say nothing about the request, only that Postgres is away
/// or going away: the connection failed or dropped, the server is shutting
/// down or starting up (SQLSTATE class 08, 57P01–57P03), or it has no
/// connection slot left (53300).
pub fn is_connection_fault(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The body of every error answer, the edge's and the origin's alike.
pub use wire::problem::Problem;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem { error: self.code.to_owned(), message: self.message, details: self.details };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // Organizer keys, access tokens and buyer sessions are all bearer tokens.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"stampede\""));
        }
        if let Some(event) = self.session_ended {
            response.headers_mut().extend(session_ended_header(event));
        }
        response
    }
}

/// The header that tells the edge a waiting-room session has ended.
pub type SessionEnded = [(HeaderName, HeaderValue); 1];

/// The header telling the edge that a session of `event`'s waiting room
/// ended: on a refusal of its token, and on the answer that ended it.
pub fn session_ended_header(event: uuid::Uuid) -> SessionEnded {
    let value = HeaderValue::from_str(&event.to_string()).expect("a UUID is a header value");
    [(HeaderName::from_static(SESSION_ENDED_HEADER), value)]
}

/// `201 Created` with the new resource's address in `Location`.
pub fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, ApiJson(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `axum::Json`, but a rejected body comes out in our problem format, and
/// every string in it has passed [`crate::text::check`] before the handler
/// sees it.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(document) = axum::Json::<Value>::from_request(request, state).await?;
        text::check_json(&document).map_err(ApiError::from)?;
        serde_json::from_value(document).map(ApiJson).map_err(|e| ApiError::invalid(e.to_string()))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl From<TextError> for ApiError {
    fn from(e: TextError) -> Self {
        let at = e.at().to_owned();
        Self::new(StatusCode::BAD_REQUEST, "invalid_text", e.to_string()).with("field", at)
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The matched route's parameters, percent-decoded, checked as text, then
/// parsed into `T`. A parameter that does not parse names nothing that
/// exists: 404, in our problem format.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
        for (name, value) in &raw {
            text::check(name, value)?;
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such resource: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// Outermost safety net: an error answer that some layer produced as plain
/// text or with no body (axum's 405, a body-limit rejection in a raw-bytes
/// extractor, a timeout) is rewritten into the problem format, so clients
/// see `{"error","message"}` for every refusal. It also logs the cause of
/// every internal error, once, in the request's span.
pub async fn problems_everywhere(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get() {
        tracing::error!(error = %cause, "internal error");
    }
    let status = response.status();
    let is_json_or_html =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
            t.starts_with("application/json")
                || t.starts_with("text/html")
                || t.starts_with("text/event-stream")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_html {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = match std::str::from_utf8(&text).map(str::trim) {
        Ok(text) if !text.is_empty() => text.to_owned(),
        _ => status.canonical_reason().unwrap_or("request refused").to_owned(),
    };
    let mut problem = ApiError::new(status, code_of(status), message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// The stable code for a status when no handler chose one.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "route_not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        s if s.is_client_error() => "invalid_request",
        _ => "internal_error",
    }
}

/// Why one of our SQL functions refused (see migration 0007): its SQLSTATE
/// (class `SH`) and DETAIL. Any other error is `None`.
pub fn sql_refusal(e: &sqlx::Error) -> Option<(String, String)> {
    let e = e.as_database_error()?.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    e.code().starts_with("SH").then(|| (e.code().to_owned(), e.detail().unwrap_or_default().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_cause_rides_to_the_log_and_never_to_the_client() {
        let response = ApiError::internal("relation \"payments\" is locked by pid 4242").into_response();
        assert_eq!(response.status(), 500);
        let cause = response.extensions().get::<InternalCause>().map(|c| c.0.clone());
        assert_eq!(cause.as_deref(), Some("relation \"payments\" is locked by pid 4242"));
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("4242") && body.contains("internal_error"), "{body}");
        let refusal = ApiError::not_found("event").into_response();
        assert!(refusal.extensions().get::<InternalCause>().is_none(), "refusals are not logged as errors");
    }
}
