//! The seam between Stampede's edge services and the platform under them.
//!
//! Services are written against [`Runtime`] (outbound HTTP, wall clock,
//! randomness) and plain `http` types; [`redis::Redis`] speaks the Upstash
//! REST protocol over that outbound HTTP. Each platform contributes only an
//! adapter: [`spin`] for Spin and any `wasi:http/proxy` host, [`workers`]
//! for Cloudflare Workers.

pub mod redis;
#[cfg(feature = "spin")]
pub mod spin;
#[cfg(feature = "workers")]
pub mod workers;

/// An outbound request that got no HTTP answer.
#[derive(Debug, thiserror::Error)]
#[error("outbound request failed: {0}")]
pub struct SendError(pub String);

/// A response body: built whole by the service, or relayed from upstream
/// as it arrives. A server-sent-events stream never ends, so an edge that
/// buffered it would never answer.
pub enum Body<S> {
    Full(Vec<u8>),
    Relayed(S),
}

/// What a service running on `R` answers.
pub type Reply<R> = http::Response<Body<<R as Runtime>::Relayed>>;

/// Answers a service may give: whole ones, or ones with a relayed body.
pub trait IntoReply<S> {
    fn into_reply(self) -> http::Response<Body<S>>;
}

impl<S> IntoReply<S> for http::Response<Vec<u8>> {
    fn into_reply(self) -> http::Response<Body<S>> {
        self.map(Body::Full)
    }
}

impl<S> IntoReply<S> for http::Response<Body<S>> {
    fn into_reply(self) -> http::Response<Body<S>> {
        self
    }
}

pub trait Runtime {
    /// A response body still arriving from upstream, handed on unread.
    type Relayed;
    /// A configuration value (Spin variable, Worker var or secret); unset
    /// and blank are the same.
    fn var(&self, name: &str) -> Option<String>;
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, SendError>>;
    /// Sends `request` and returns as soon as the response head arrives,
    /// leaving the body for the adapter to relay to the client.
    fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Self::Relayed>, SendError>>;
    /// Wall-clock time in milliseconds since the epoch.
    fn now_ms(&self) -> i64;
    fn random(&self) -> [u8; 32];
    /// A line for the operator's log.
    fn log(&self, message: &str);
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

/// The answer to a request the platform could not hand over whole.
pub fn unreadable_request() -> http::Response<Vec<u8>> {
    let body = br#"{"error":"invalid_request","message":"the request could not be read"}"#.to_vec();
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
