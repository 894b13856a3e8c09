//! Configuration from the platform (Spin component variables, Worker vars
//! and secrets).

use edge_platform::Runtime;
use queue_tokens::{KeyError, Keyring};

pub struct Config {
    pub origin_url: String,
    pub redis_url: String,
    pub redis_token: String,
    pub keys: Keyring,
    /// Joins allowed per client address per minute.
    pub joins_per_minute: u64,
    /// Status of a JSON answer to a blocked API call: 202 or 429.
    pub blocked_status: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0} is not valid: {1}")]
    Invalid(&'static str, String),
    #[error("QUEUE_SIGNING_KEYS: {0}")]
    Keys(#[from] KeyError),
}

impl Config {
    pub fn from_runtime(runtime: &impl Runtime) -> Result<Self, ConfigError> {
        let var = |name: &'static str| runtime.var(name);
        let required = |name: &'static str| var(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| match var(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid(name, v)),
        };
        let blocked_status = number("QUEUE_BLOCKED_STATUS", 202)? as u16;
        if ![202, 429].contains(&blocked_status) {
            return Err(ConfigError::Invalid("QUEUE_BLOCKED_STATUS", "use 202 or 429".into()));
        }
        let issuer = var("QUEUE_ISSUER").unwrap_or_else(|| "stampede-edge".into());
        Ok(Self {
            origin_url: required("ORIGIN_URL")?.trim_end_matches('/').to_owned(),
            redis_url: required("UPSTASH_REDIS_REST_URL")?.trim_end_matches('/').to_owned(),
            redis_token: required("UPSTASH_REDIS_REST_TOKEN")?,
            keys: Keyring::from_config(&required("QUEUE_SIGNING_KEYS")?, &issuer)?,
            joins_per_minute: number("QUEUE_JOINS_PER_MINUTE_PER_IP", 30)?,
            blocked_status,
        })
    }
}
