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

pub(super) fn empty(status: StatusCode) -> Response {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = status;
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

pub(super) fn with_body(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let length = body.len().to_string();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::CONTENT_LENGTH, &length);
    response
}

pub(super) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("JSON serializes");
    let mut response = with_body(status, "application/json", body);
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}
