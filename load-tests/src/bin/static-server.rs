//! The native baseline of the edge benchmark: a plain hyper server that
//! answers every request with the same bytes (a page the edge served),
//! with the same headers an edge answer carries.
//!
//! `static-server <listen-addr> <file> <content-type>`; prints the address.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, file, content_type] = args.as_slice() else {
        bail!("usage: static-server <listen-addr> <file> <content-type>");
    };
    let body = Bytes::from(std::fs::read(file).with_context(|| format!("cannot read {file}"))?);
    let content_type = Arc::new(content_type.clone());
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (body, content_type) = (body.clone(), Arc::clone(&content_type));
        let service = service_fn(move |_request| {
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", content_type.as_str())
                .header("cache-control", "public, max-age=0, s-maxage=5")
                .body(Full::new(body.clone()))
                .expect("a valid response");
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}
