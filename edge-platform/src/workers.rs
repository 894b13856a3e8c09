//! The adapter for Cloudflare Workers (workers-rs on `wasm32-unknown-unknown`):
//! outbound HTTP through `fetch`, configuration from the Worker's vars and
//! secrets, time from `Date.now()`, randomness from `crypto.getRandomValues`.

use std::time::Duration;

use worker::{Env, Headers, Method, Request, RequestInit, Response};

use crate::{Body, Incoming, IntoReply, Reply, Runtime, SendError, too_large, unreadable_request};

pub struct Fetch {
    env: Env,
}

impl Fetch {
    pub fn new(env: Env) -> Self {
        Self { env }
    }
}

impl Runtime for Fetch {
    /// The fetched response itself: its body is a `ReadableStream` the
    /// runtime pipes to the client.
    type Relayed = Response;

    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, SendError> {
        let (head, mut fetched) = self.open(request).await?.into_parts();
        let body = fetched.bytes().await.map_err(|e| SendError(e.to_string()))?;
        Ok(http::Response::from_parts(head, body))
    }

    async fn open(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Response>, SendError> {
        let failed = |e: worker::Error| SendError(e.to_string());
        let outbound = to_worker_request(request).map_err(failed)?;
        let response = worker::Fetch::Request(outbound).send().await.map_err(failed)?;
        let mut head = http::Response::builder().status(response.status_code());
        // Workers ask for compressed answers themselves and hand the body
        // over decoded: the encoding and length describe bytes we no longer
        // hold (kept, the runtime would encode the body again for a client
        // that never asked). Cloudflare compresses for clients that do.
        for (name, value) in response.headers().entries() {
            if !name.eq_ignore_ascii_case("content-encoding") && !name.eq_ignore_ascii_case("content-length")
            {
                head = head.header(name, value);
            }
        }
        head.body(response).map_err(|e| SendError(e.to_string()))
    }

    /// The var (`[vars]`) or secret (`wrangler secret put`) named after the
    /// variable in Workers' upper case: `origin_url` is `ORIGIN_URL`.
    fn var(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_uppercase();
        let value = match self.env.var(&name) {
            Ok(var) => var.to_string(),
            Err(_) => self.env.secret(&name).ok()?.to_string(),
        };
        Some(value).filter(|v| !v.trim().is_empty())
    }

    fn now_ms(&self) -> i64 {
        worker::Date::now().as_millis() as i64
    }

    fn random(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("Workers provide crypto.getRandomValues");
        bytes
    }

    fn log(&self, message: &str) {
        worker::console_error!("{message}");
    }

    async fn sleep_ms(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await;
    }
}

fn to_worker_request(request: http::Request<Vec<u8>>) -> worker::Result<Request> {
    let (parts, body) = request.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        headers
            .append(name.as_str(), value.to_str().map_err(|e| worker::Error::RustError(e.to_string()))?)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(parts.method.as_str().to_owned())).with_headers(headers);
    if !body.is_empty() {
        init.with_body(Some(worker::js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    Request::new_with_init(&parts.uri.to_string(), &init)
}

/// Reads the whole request. Cloudflare puts the caller's address in
/// `CF-Connecting-IP` (and overwrites any such header a client sends).
pub async fn read_request(mut request: Request) -> worker::Result<Incoming> {
    let url = request.url()?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut builder = http::Request::builder().method(request.method().as_ref()).uri(path);
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    let client_ip = request.headers().get("cf-connecting-ip")?;
    let body = request.bytes().await?;
    let request = builder.body(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(Incoming { request, client_ip, https: url.scheme() == "https" })
}

/// Every header value is kept, so two `Set-Cookie`s stay two. A relayed
/// body keeps its stream; only the head is ours.
pub fn write_response(response: Reply<Fetch>) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let status = response.status();
    let response = match response.into_body() {
        // A 204 or 304 must not carry a body, not even an empty one.
        Body::Full(body) if body.is_empty() => Response::empty()?,
        Body::Full(body) => Response::from_bytes(body)?,
        Body::Relayed(fetched) => fetched,
    };
    Ok(response.with_status(status.as_u16()).with_headers(headers))
}

/// Serves one request with `service`, answering 400 if it cannot be read.
pub async fn serve<F, Fut, Answer>(request: Request, service: F) -> worker::Result<Response>
where
    F: FnOnce(Incoming) -> Fut,
    Fut: Future<Output = Answer>,
    Answer: IntoReply<Response>,
{
    let declared = request.headers().get("content-length").ok().flatten();
    if declared.is_some_and(|length| edge_core::declares_too_large_body(length.as_bytes())) {
        return write_response(too_large().into_reply());
    }
    let response = match read_request(request).await.map(Incoming::admit) {
        Ok(Ok(incoming)) => service(incoming).await.into_reply(),
        Ok(Err(refusal)) => (*refusal).into_reply(),
        Err(e) => {
            worker::console_error!("unreadable request: {e}");
            unreadable_request().into_reply()
        }
    };
    write_response(response)
}
