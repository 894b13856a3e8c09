//! The runtime-independent core of Stampede's edge components.
//!
//! Nothing here performs I/O: the Spin and Workers adapters fetch, this
//! crate decides and renders, so all of it is tested natively.

pub mod catalog;
pub mod cookies;
pub mod html;
pub mod http_cache;
pub mod page_cache;
pub mod query;
