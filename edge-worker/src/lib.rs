//! Stampede's edge as one Cloudflare Worker, configured by the top-level
//! `wrangler.toml`: the same catalog and waiting-room services the Spin
//! components run, behind one router, so a waiting-room poll costs no hop
//! between Workers. The router gives the catalog its paths
//! ([`edge_catalog::service::serves`], which a test holds to `spin.toml`)
//! and the waiting room the rest; it answers unknown paths with a 404.
//!
//! Built by `cargo xtask worker` (the `[build]` command of `wrangler.toml`).

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

#[worker::event(fetch)]
async fn fetch(
    request: worker::Request,
    env: worker::Env,
    _: worker::Context,
) -> worker::Result<worker::Response> {
    // Decided on the path's one spelling, the one each service routes by.
    let path = edge_core::path::normalize(&request.path()).unwrap_or_default();
    if edge_catalog::service::serves(&path) {
        edge_catalog::cloudflare::serve(request, env).await
    } else {
        edge_queue::cloudflare::serve(request, env).await
    }
}
