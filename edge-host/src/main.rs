//! `edge-host [--manifest spin.toml] [--wit wit] [--listen 127.0.0.1:3000]
//! [--max-reuse 1024] [--idle-timeout-ms 1000] [--max-instances 256]
//! [--profile perfmap]`
//!
//! Flags fall back to `STAMPEDE_EDGE_LISTEN` and friends; see README.md.

use std::time::Duration;

use anyhow::{Context as _, bail};
use edge_host::{EdgeHost, HostConfig};

fn config_from_args() -> anyhow::Result<HostConfig> {
    let mut config = HostConfig::default();
    if let Ok(listen) = std::env::var("STAMPEDE_EDGE_LISTEN") {
        config.listen = listen.parse().context("STAMPEDE_EDGE_LISTEN must be host:port")?;
    }
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--manifest" => config.manifest = value.into(),
            "--wit" => config.wit = value.into(),
            "--listen" => config.listen = value.parse().context("--listen must be host:port")?,
            "--max-reuse" => config.reuse.max_reuse = value.parse().context("--max-reuse")?,
            "--idle-timeout-ms" => {
                config.reuse.idle_timeout = Duration::from_millis(value.parse().context("--idle-timeout-ms")?)
            }
            "--max-instances" => config.max_instances = value.parse().context("--max-instances")?,
            "--profile" if value == "perfmap" => config.perf_map = true,
            other => bail!("unknown flag {other}; see the top of edge-host/src/main.rs"),
        }
    }
    if config.reuse.max_reuse == 0 {
        bail!("--max-reuse must be at least 1 (1 = a fresh instance per request)");
    }
    Ok(config)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let host = EdgeHost::build(config_from_args()?)?;
    host.serve(shutdown_signal()).await
}
