//! The seam between Stampede's edge services and the platform under them.
//!
//! Services are written against [`Runtime`] (outbound HTTP, wall clock,
//! randomness) and plain `http` types; [`redis::Redis`] speaks the Upstash
//! REST protocol over that outbound HTTP. Each platform contributes only an
//! adapter: [`spin`] for Spin and any `wasi:http/proxy` host.

pub mod redis;
#[cfg(feature = "spin")]
pub mod spin;

/// An outbound request that got no HTTP answer.
#[derive(Debug, thiserror::Error)]
#[error("outbound request failed: {0}")]
pub struct SendError(pub String);

pub trait Runtime {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, SendError>>;
    /// Wall-clock time in milliseconds since the epoch.
    fn now_ms(&self) -> i64;
    fn random(&self) -> [u8; 32];
    /// Waits without busy-looping (used while another request fills a cache).
    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()>;
}

/// A request as the platform delivered it.
pub struct Incoming {
    pub request: http::Request<Vec<u8>>,
    /// The caller's address as the platform saw it (never a client header).
    pub client_ip: Option<String>,
    /// Whether the visitor reached us over HTTPS (cookies get `Secure`).
    pub https: bool,
}
