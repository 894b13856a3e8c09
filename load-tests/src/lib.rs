//! What the native load generators share: one keep-alive HTTP/1.1
//! connection that reopens itself when it breaks, and latency percentiles.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One client connection to one server, as a browser tab or k6 VU keeps it.
pub struct Connection {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn to(uri: &Uri) -> anyhow::Result<Self> {
        let authority = uri.authority().context("url without host")?.to_string();
        Ok(Self { authority, sender: None })
    }

    /// Sends one request and reads the whole answer. A broken connection is
    /// an error, and the next request opens a new one.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            slot => {
                let stream = TcpStream::connect(&self.authority).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                slot.insert(sender)
            }
        };
        let mut request =
            Request::builder().method(method).uri(path).header(hyper::header::HOST, &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = async {
            let response = sender.send_request(request.body(Full::new(body))?).await?;
            let status = response.status();
            anyhow::Ok((status, response.into_body().collect().await?.to_bytes()))
        }
        .await;
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }
}

/// Latencies of one kind of request or operation.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.0.push(took);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The `p`-quantile (0–1) in milliseconds; 0 when nothing was recorded.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        self.0.sort_unstable();
        let index = ((self.0.len() as f64 * p) as usize).min(self.0.len().saturating_sub(1));
        self.0.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}
