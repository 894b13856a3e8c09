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
pub mod query;

/// The largest request body the edge accepts (the origin's own limit):
/// larger ones are refused with 413 before anything is forwarded.
pub const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024;
