//! What crosses the wire between the edge and the origin, defined once and
//! used by both sides: the catalog's JSON and its list query ([`catalog`],
//! [`query`]), an event's waiting-room settings ([`room`]), the problem body
//! of every refusal ([`problem`]), and the names both sides must agree on:
//! headers, cookies, the Redis keys the origin writes for the edge
//! ([`names`]); how URLs are percent-encoded ([`encoding`]) and how prices
//! are written ([`money`]). No I/O, and nothing only one side needs.

pub mod catalog;
pub mod encoding;
pub mod money;
pub mod names;
pub mod problem;
pub mod query;
pub mod room;

/// The largest request body either side accepts: the edge refuses larger
/// ones with 413 before forwarding, the origin before parsing.
pub const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024;
