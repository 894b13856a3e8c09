//! The one error type handlers return, and its JSON problem format:
//! `{"error": "<stable_code>", "message": "<for humans>", ...details}`.
//! Internal causes are logged, never sent to clients.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Map::new() }
    }

    /// Adds a machine-readable field next to `error` and `message`.
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.details.insert(key.to_owned(), json!(value));
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side")
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
            }
            _ => Self::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.details;
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

/// `axum::Json`, but a rejected body comes out in our problem format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
