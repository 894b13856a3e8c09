//! Configuration from the environment, with defaults for local runs.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`
    pub database_url: String,
    /// `STAMPEDE_ORIGIN_LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `STAMPEDE_DB_POOL_SIZE`, default 32.
    pub pool_size: u32,
    /// `STAMPEDE_REQUEST_TIMEOUT_MS`, default 10000.
    pub request_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        let parsed = |name: &str, default: &str| -> anyhow::Result<String> {
            Ok(var(name).unwrap_or_else(|| default.to_owned()))
        };
        Ok(Self {
            database_url: var("DATABASE_URL")
                .context("DATABASE_URL must be set (postgres://user@host:port/db)")?,
            listen: parsed("STAMPEDE_ORIGIN_LISTEN", "127.0.0.1:8080")?
                .parse()
                .context("STAMPEDE_ORIGIN_LISTEN must be host:port")?,
            pool_size: parsed("STAMPEDE_DB_POOL_SIZE", "32")?.parse().context("STAMPEDE_DB_POOL_SIZE")?,
            request_timeout: Duration::from_millis(
                parsed("STAMPEDE_REQUEST_TIMEOUT_MS", "10000")?
                    .parse()
                    .context("STAMPEDE_REQUEST_TIMEOUT_MS")?,
            ),
        })
    }
}
