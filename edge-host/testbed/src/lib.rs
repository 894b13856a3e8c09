//! Test fixture for `edge-host`: one route per host capability.
//!
//! - `GET /env/{NAME}`: the value of an environment variable (404 if unset);
//! - `GET /config/{name}`: a configuration value as the edge services read
//!   it, through `wasi:config/store` (404 if unset);
//! - `GET /fetch?{url}`: an outbound GET, answering `status {code}` or `denied {error}`;
//! - `GET /stream?{bytes}`: a streamed body of that many bytes;
//! - `GET /counter`: how many requests this instance has served, which shows
//!   whether the host reuses instances;
//! - `GET /adapted?{bytes}`: that many bytes of JSON, the request read and
//!   the answer written through the edge services' own adapter
//!   (`edge_platform::spin::serve`) and nothing else: what any answer of
//!   that size costs our components before their own work (the bench).

use edge_platform::Runtime as _;
use futures::SinkExt as _;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam, send};
use spin_sdk::http_component;

const CHUNK: usize = 64 * 1024;

static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[http_component]
async fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if let Some(name) = path.strip_prefix("/env/") {
        match std::env::var(name) {
            Ok(value) => reply(out, 200, value.into_bytes()).await,
            Err(_) => reply(out, 404, b"unset".to_vec()).await,
        }
    } else if let Some(name) = path.strip_prefix("/config/") {
        match edge_platform::spin::Wasi.var(name) {
            Some(value) => reply(out, 200, value.into_bytes()).await,
            None => reply(out, 404, b"unset".to_vec()).await,
        }
    } else if path == "/fetch" {
        let request = spin_sdk::http::Request::get(query).build();
        match send::<_, spin_sdk::http::Response>(request).await {
            Ok(response) => reply(out, 200, format!("status {}", response.status()).into_bytes()).await,
            Err(e) => reply(out, 502, format!("denied {e:?}").into_bytes()).await,
        }
    } else if path == "/stream" {
        let Ok(mut remaining) = query.parse::<usize>() else {
            return reply(out, 400, b"bytes?".to_vec()).await;
        };
        let response = OutgoingResponse::new(Fields::new());
        let mut body = response.take_body();
        out.set(response);
        let chunk = vec![b'x'; CHUNK];
        while remaining > 0 {
            let n = remaining.min(CHUNK);
            if body.send(chunk[..n].to_vec()).await.is_err() {
                return;
            }
            remaining -= n;
        }
    } else if path == "/adapted" {
        let Ok(bytes) = query.parse::<usize>() else {
            return reply(out, 400, b"bytes?".to_vec()).await;
        };
        edge_platform::spin::serve(request, out, |_| async move { adapted(bytes) }).await
    } else if path == "/counter" {
        reply(out, 200, served.to_string().into_bytes()).await
    } else {
        reply(out, 404, b"no such test route".to_vec()).await
    }
}

/// An answer as the services give one: JSON with its type, length and caching.
fn adapted(bytes: usize) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(vec![b' '; bytes]);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(bytes));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

async fn reply(out: ResponseOutparam, status: u16, body: Vec<u8>) {
    let headers = Fields::from_list(&[("content-length".to_owned(), body.len().to_string().into_bytes())])
        .expect("valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    if let Err(e) = out.set_with_body(response, body).await {
        eprintln!("cannot write the response body: {e}");
    }
}
