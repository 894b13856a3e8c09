//! The adapter for Spin and any `wasi:http/proxy` host: outbound HTTP
//! through `wasi:http`, configuration through `wasi:config/store`, time and
//! randomness through WASI.
//!
//! Requests and responses are converted at the level of `wasi:http`
//! resources rather than through spin-sdk's `Request`/`Response`, whose
//! header maps keep one value per name: a response may set two cookies,
//! and a proxied answer must keep every header it had.

use futures::{SinkExt as _, StreamExt as _};
use spin_sdk::http::{
    Fields, IncomingRequest, IncomingResponse, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::{Body, Incoming, IntoReply, Reply, Runtime, SendError, too_large, unreadable_request};

/// `wasi:config/store` in the snapshot Spin 3 provides (see `wit/world.wit`).
mod config {
    wit_bindgen::generate!({ path: "../wit/deps/config", world: "wasi:config/imports" });
    pub use self::wasi::config::store::get;
}

pub struct Wasi;

impl Runtime for Wasi {
    type Relayed = IncomingResponse;

    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, SendError> {
        spin_sdk::http::send(request).await.map_err(|e| SendError(e.to_string()))
    }

    async fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<IncomingResponse>, SendError> {
        let response: IncomingResponse =
            spin_sdk::http::send(request).await.map_err(|e| SendError(e.to_string()))?;
        let mut head = http::Response::builder().status(response.status());
        for (name, value) in response.headers().entries() {
            head = head.header(name, value);
        }
        head.body(response).map_err(|e| SendError(e.to_string()))
    }

    /// The component variable `name`, as Spin hands it over: through
    /// `wasi:config/store`, never the environment.
    fn var(&self, name: &str) -> Option<String> {
        match config::get(name) {
            Ok(value) => value.filter(|v| !v.trim().is_empty()),
            Err(e) => {
                eprintln!("cannot read configuration `{name}`: {e:?}");
                None
            }
        }
    }

    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn random(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("WASI provides randomness");
        bytes
    }

    fn log(&self, message: &str) {
        eprintln!("{message}");
    }

    /// A `wasi:clocks` timer the executor waits on with everything else,
    /// so an outbound request can race it.
    async fn sleep_ms(&self, ms: u64) {
        use wasi::clocks::monotonic_clock;
        let deadline = monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000));
        // Re-registered on each poll; dropping the old token unregisters it.
        let mut registered: Option<spin_executor::CancelOnDropToken> = None;
        std::future::poll_fn(|context| {
            if monotonic_clock::now() >= deadline {
                return std::task::Poll::Ready(());
            }
            let timer = monotonic_clock::subscribe_instant(deadline);
            registered = Some(spin_executor::push_waker_and_get_token(timer, context.waker().clone()).into());
            std::task::Poll::Pending
        })
        .await;
    }
}

/// Reads the whole request; Spin (and our host) put the caller's address
/// and the full URL in `spin-*` headers. `headers` are the request's, read
/// once by [`serve`] (each read is a copy across the component boundary).
async fn read_request(
    incoming: IncomingRequest,
    headers: Vec<(String, Vec<u8>)>,
) -> anyhow::Result<Incoming> {
    let method = http::Method::from(incoming.method());
    let uri: http::Uri = incoming.path_with_query().unwrap_or_default().parse()?;
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        map.append(http::HeaderName::try_from(name)?, http::HeaderValue::try_from(value)?);
    }
    let framed =
        map.contains_key(http::header::CONTENT_LENGTH) || map.contains_key(http::header::TRANSFER_ENCODING);
    // A GET or HEAD without framing headers has no body in HTTP/1.1, and any
    // it carried over HTTP/2 means nothing to a service: not reading it
    // spares a poll of the host and a dozen calls across the boundary.
    let body = if framed || !matches!(method, http::Method::GET | http::Method::HEAD) {
        incoming.into_body().await?
    } else {
        Vec::new()
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = map;
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client_ip = header("spin-client-addr").map(|addr| match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_matches(['[', ']']).to_owned(),
        None => addr,
    });
    let https = header("spin-full-url").is_some_and(|url| url.starts_with("https:"));
    Ok(Incoming { request, client_ip, https })
}

/// Sends the head at once, then the body: whole, or chunk by chunk as it
/// arrives from upstream.
pub async fn write_response(out: ResponseOutparam, response: Reply<Wasi>) {
    let (head, body) = response.into_parts();
    let headers: Vec<(String, Vec<u8>)> =
        head.headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingResponse::new(fields);
    if outgoing.set_status_code(head.status.as_u16()).is_err() {
        eprintln!("invalid response status {}", head.status);
    }
    let sent = match body {
        Body::Full(bytes) => {
            let body = outgoing.body().expect("a new response's body is there to take");
            out.set(outgoing);
            write_whole(body, &bytes)
        }
        Body::Relayed(upstream) => {
            let mut sink = std::pin::pin!(outgoing.take_body());
            out.set(outgoing);
            relay(&mut sink, upstream).await
        }
    };
    if let Err(e) = sent {
        eprintln!("{e}");
    }
}

/// Writes a body the service built whole, with one blocking write per
/// 4 KiB (the most `wasi:io` takes at once): the guest has nothing else to
/// do meanwhile, and it is a third of the host calls of a polled sink.
fn write_whole(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    let stream = body.write().expect("a new body's stream is there to take");
    let written = bytes.chunks(4096).try_for_each(|chunk| stream.blocking_write_and_flush(chunk));
    drop(stream);
    written.map_err(|e| format!("the client went away: {e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("cannot finish the response body: {e:?}"))
}

/// Hands an upstream body on chunk by chunk as it arrives.
async fn relay(
    sink: &mut (impl futures::Sink<Vec<u8>, Error = wasi::io::streams::StreamError> + Unpin),
    upstream: IncomingResponse,
) -> Result<(), String> {
    let mut chunks = std::pin::pin!(upstream.take_body_stream());
    loop {
        match chunks.next().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(format!("upstream failed mid-body: {e:?}")),
            Some(Ok(chunk)) => sink.send(chunk).await.map_err(|e| format!("the client went away: {e:?}"))?,
        }
    }
}

/// Serves one request with `service`, answering 400 if it cannot be read.
pub async fn serve<F, Fut, Answer>(incoming: IncomingRequest, out: ResponseOutparam, service: F)
where
    F: FnOnce(Incoming) -> Fut,
    Fut: Future<Output = Answer>,
    Answer: IntoReply<IncomingResponse>,
{
    let headers = incoming.headers().entries();
    let declared_too_large = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-length") && edge_core::declares_too_large_body(value)
    });
    let response = if declared_too_large {
        too_large().into_reply()
    } else {
        match read_request(incoming, headers).await.map(Incoming::admit) {
            Ok(Ok(incoming)) => service(incoming).await.into_reply(),
            Ok(Err(refusal)) => (*refusal).into_reply(),
            Err(e) => {
                eprintln!("unreadable request: {e}");
                unreadable_request().into_reply()
            }
        }
    };
    write_response(out, response).await;
}
