//! `edge-host`: runs Stampede's edge components locally, the way Spin would.
//!
//! It reads `spin.toml`, checks every component against the WIT world in
//! `wit/`, compiles them once with Wasmtime, and serves all their routes on
//! one port with the pooling allocator and warm-instance reuse. Components
//! read their `variables` through `wasi:config/store`, as on Spin; outbound
//! HTTP is limited to each component's `allowed_outbound_hosts`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let host = edge_host::EdgeHost::build(edge_host::HostConfig::default())?;
//! host.serve(async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

pub mod config;
pub mod instance;
pub mod manifest;
pub mod outbound;
pub mod routes;
pub mod server;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod world;

pub use server::{EdgeHost, HostConfig};
