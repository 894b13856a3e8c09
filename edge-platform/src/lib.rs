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
    /// A configuration value by its Spin variable name (`origin_url`): a
    /// component variable on Spin, the var or secret of the upper-case name
    /// (`ORIGIN_URL`) on Workers. Unset and blank are the same.
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

/// Waits at most `ms` for `work`; `None` if the time ran out first (the
/// work is dropped, which cancels an outbound request).
pub async fn within<R: Runtime, T>(runtime: &R, ms: u64, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut timer = std::pin::pin!(runtime.sleep_ms(ms));
    std::future::poll_fn(|context| {
        if let std::task::Poll::Ready(done) = work.as_mut().poll(context) {
            return std::task::Poll::Ready(Some(done));
        }
        timer.as_mut().poll(context).map(|()| None)
    })
    .await
}

/// A request as the platform delivered it.
#[derive(Debug)]
pub struct Incoming {
    pub request: http::Request<Vec<u8>>,
    /// The caller's address as the platform saw it (never a client header).
    pub client_ip: Option<String>,
    /// Whether the visitor reached us over HTTPS (cookies get `Secure`).
    pub https: bool,
}

impl Incoming {
    /// What every request must be before a service sees it: on a path with
    /// one spelling (the request is rewritten to it, so the service routes,
    /// judges and forwards that one) and with a body within
    /// [`edge_core::MAX_REQUEST_BODY_BYTES`].
    /// The refusal is boxed: it is the rare path.
    pub fn admit(mut self) -> Result<Self, Box<http::Response<Vec<u8>>>> {
        if self.request.body().len() > edge_core::MAX_REQUEST_BODY_BYTES {
            return Err(Box::new(too_large()));
        }
        edge_core::path::normalize_uri(self.request.uri_mut())
            .map_err(|e| Box::new(problem(http::StatusCode::BAD_REQUEST, "invalid_path", &e.to_string())))?;
        Ok(self)
    }
}

/// 413 in the problem format.
pub fn too_large() -> http::Response<Vec<u8>> {
    let message = format!("request bodies are limited to {} bytes", edge_core::MAX_REQUEST_BODY_BYTES);
    problem(http::StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &message)
}

/// The answer to a request the platform could not hand over whole.
pub fn unreadable_request() -> http::Response<Vec<u8>> {
    problem(http::StatusCode::BAD_REQUEST, "invalid_request", "the request could not be read")
}

fn problem(status: http::StatusCode, code: &str, message: &str) -> http::Response<Vec<u8>> {
    let body = wire::problem::Problem::new(code, message).to_json().into_bytes();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(uri: &str, body: usize) -> Incoming {
        let request = http::Request::builder().uri(uri).body(vec![b'x'; body]).unwrap();
        Incoming { request, client_ip: None, https: false }
    }

    #[test]
    fn requests_are_admitted_on_their_normal_path_only() {
        let admitted = incoming("/api/v1/%72eservations//x/../abc?q=%zz", 0).admit().unwrap();
        assert_eq!(admitted.request.uri(), "/api/v1/reservations/abc?q=%zz");
        assert_eq!(incoming("/a%2Fb", 0).admit().unwrap_err().status(), 400);
        assert_eq!(incoming("/..", 0).admit().unwrap_err().status(), 400);
        let too_big = incoming("/", edge_core::MAX_REQUEST_BODY_BYTES + 1).admit().unwrap_err();
        assert_eq!(too_big.status(), 413);
        assert!(String::from_utf8((*too_big).into_body()).unwrap().contains("\"body_too_large\""));
        assert!(incoming("/", edge_core::MAX_REQUEST_BODY_BYTES).admit().is_ok());
    }
}
