//! Configuration from the platform: Spin component variables by these
//! names, Worker vars and secrets by their upper-case ones.

use std::sync::OnceLock;

use edge_platform::Runtime;
use queue_tokens::{KeyError, Keyring};

pub struct Config {
    pub origin_url: String,
    pub redis_url: String,
    pub redis_token: String,
    pub keys: Keyring,
    /// The public keys as `/.well-known/jwks.json` serves them, written at
    /// the first request for them (deriving a public key is not free, and
    /// most instances are never asked).
    jwks: OnceLock<Vec<u8>>,
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
    #[error("queue_signing_keys: {0}")]
    Keys(#[from] KeyError),
}

impl Config {
    pub fn jwks(&self) -> &[u8] {
        self.jwks.get_or_init(|| self.keys.jwks().to_string().into_bytes())
    }

    pub fn from_runtime(runtime: &impl Runtime) -> Result<Self, ConfigError> {
        let var = |name: &'static str| runtime.var(name);
        let required = |name: &'static str| var(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| match var(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid(name, v)),
        };
        let blocked_status = number("queue_blocked_status", 202)? as u16;
        if ![202, 429].contains(&blocked_status) {
            return Err(ConfigError::Invalid("queue_blocked_status", "use 202 or 429".into()));
        }
        let issuer = var("queue_issuer").unwrap_or_else(|| "stampede-edge".into());
        Ok(Self {
            origin_url: required("origin_url")?.trim_end_matches('/').to_owned(),
            redis_url: required("upstash_redis_rest_url")?.trim_end_matches('/').to_owned(),
            redis_token: required("upstash_redis_rest_token")?,
            keys: Keyring::from_config(&required("queue_signing_keys")?, &issuer)?,
            jwks: OnceLock::new(),
            joins_per_minute: number("queue_joins_per_minute_per_ip", 30)?,
            blocked_status,
        })
    }
}
