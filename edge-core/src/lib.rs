//! The runtime-independent core of Stampede's edge components.
//!
//! Nothing here performs I/O: the Spin and Workers adapters fetch, this
//! crate decides and renders, so all of it is tested natively.

pub mod catalog;
pub mod cookies;
pub mod html;
pub mod http_cache;
pub mod page_cache;
pub mod path;

pub use wire::MAX_REQUEST_BODY_BYTES;

/// Whether a `Content-Length` value declares a body over
/// [`MAX_REQUEST_BODY_BYTES`], so the request is refused before its body is read.
pub fn declares_too_large_body(content_length: &[u8]) -> bool {
    std::str::from_utf8(content_length)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > MAX_REQUEST_BODY_BYTES)
}
