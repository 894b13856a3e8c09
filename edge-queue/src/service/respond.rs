//! Response builders.

use super::*;

pub(super) fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

pub(super) fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    response.headers_mut().insert(name, header_value(value));
}

pub(super) fn append_cookie(response: &mut Response, cookie: &str) {
    response.headers_mut().append(header::SET_COOKIE, header_value(cookie));
}

pub(super) const NO_STORE: HeaderValue = HeaderValue::from_static(edge_core::http_cache::NO_STORE);

pub(super) fn empty(status: StatusCode) -> Response {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
}

pub(super) fn with_body(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let length = HeaderValue::from(body.len());
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, length);
    response
}

/// A JSON answer nobody may cache.
pub(super) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("JSON serializes");
    let mut response = with_body(status, "application/json", body);
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
}
