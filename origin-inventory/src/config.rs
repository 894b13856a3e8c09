//! Configuration from the environment, with defaults for local runs.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::SecretString;

use queue_tokens::Verifier;

use crate::payments::SandboxFaults;

/// Which payment provider charges cards.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    /// Stripe's test conventions, locally (`pm_card_visa`, ...), with its
    /// ledger in the database at `ledger_url`, or in the origin's own.
    Sandbox {
        faults: SandboxFaults,
        ledger_url: Option<SecretString>,
    },
    Stripe {
        api_base: String,
        secret_key: SecretString,
    },
}

impl ProviderSettings {
    /// Where the sandbox keeps its ledger, when not in the origin's database.
    pub fn sandbox_ledger_url(&self) -> Option<&SecretString> {
        match self {
            ProviderSettings::Sandbox { ledger_url, .. } => ledger_url.as_ref(),
            ProviderSettings::Stripe { .. } => None,
        }
    }
}

/// The origin's configuration. Secrets (and URLs that may carry
/// credentials) are [`SecretString`]s: `Debug` prints them redacted.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`
    pub database_url: SecretString,
    /// `STAMPEDE_ORIGIN_LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `STAMPEDE_DB_POOL_SIZE`, default 16, at least 1: connections for
    /// requests and the workers other than the outbox (it and the live
    /// seat-map listener have their own besides). Postgres runs as many
    /// statements at once as it has cores, and every connection busy beyond
    /// that lengthens every statement, the outbox's and the sweeper's too:
    /// on this project's 2-core machine, 64 buyers with 32 connections left
    /// the outbox 15 s behind after 30 s, with 16 under 3 s and with 8 1 s,
    /// at the same orders/s. Size it to the database's cores across all
    /// origin instances (about two per core).
    pub pool_size: u32,
    /// `STAMPEDE_REQUEST_TIMEOUT_MS`, default 10000.
    pub request_timeout: Duration,
    /// `STAMPEDE_DRAIN_SECONDS`, default 0: how long after SIGTERM readiness
    /// fails while requests are still served (give it the load balancer's
    /// health-check interval).
    pub drain_delay: Duration,
    /// `STAMPEDE_PAYMENT_PROVIDER` = `sandbox` (default) or `stripe`, with
    /// `STRIPE_SECRET_KEY`, `STRIPE_API_BASE`, or `STAMPEDE_SANDBOX_DATABASE_URL`,
    /// `STAMPEDE_SANDBOX_LATENCY_MS`, `STAMPEDE_SANDBOX_FAILURE_RATE`,
    /// `STAMPEDE_SANDBOX_TIMEOUT_RATE`.
    pub provider: ProviderSettings,
    /// `STAMPEDE_TICKET_SECRET`: signs ticket codes (required with Stripe).
    pub ticket_secret: SecretString,
    /// `STAMPEDE_PAYMENT_WEBHOOK_SECRET`: checks payment webhooks (required with Stripe).
    pub webhook_secret: SecretString,
    /// `STAMPEDE_BUYER_SESSION_SECRET`: signs buyer sessions (required with Stripe).
    pub buyer_session_secret: SecretString,
    /// `STAMPEDE_SWEEP_INTERVAL_MS`, default 5000: how often lapsed holds are released.
    pub sweep_interval: Duration,
    /// `STAMPEDE_SMTP_URL`, default `smtp://127.0.0.1:2525` (the local stack's server).
    pub smtp_url: SecretString,
    /// `STAMPEDE_MAIL_FROM`, default `Stampede <tickets@stampede.local>`.
    pub mail_from: String,
    /// `STAMPEDE_PUBLIC_URL`: where buyers reach the site (the edge), an
    /// absolute `http(s)://` URL; emails link there. Required with Stripe;
    /// locally `http://127.0.0.1:3000`, where `cargo xtask up` serves.
    pub public_url: String,
    /// `STAMPEDE_OUTBOX_LEASE_SECONDS`, default 60, at least 21: how long an
    /// instance that claimed notifications keeps them before others may
    /// (see `outbox::deliver_due_until`).
    pub outbox_lease: Duration,
    /// `STAMPEDE_OUTBOX_LANES`, default [`crate::outbox::LANES`]: notifications in flight at once.
    /// A crash sends again at most one message per lane.
    pub outbox_lanes: usize,
    /// `STAMPEDE_ACCESS_JWKS` (the edge's `/.well-known/jwks.json` document) and
    /// `STAMPEDE_ACCESS_ISSUER` (default `stampede-edge`): checks the waiting
    /// room's access tokens. Unset, queue-protected checkout is refused.
    pub access: Option<Verifier>,
    /// `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`: the Redis of the
    /// edge's caches, told about catalog changes. Unset, nothing is purged.
    pub edge_cache: Option<(String, SecretString)>,
}

/// Ticket secret for local runs; production (Stripe) must set its own.
pub const LOCAL_TICKET_SECRET: &str = "local-development-ticket-secret";
/// Payment webhook secret for local runs.
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_local_development";
/// Buyer session secret for local runs.
pub const LOCAL_BUYER_SESSION_SECRET: &str = "local-development-buyer-sessions";

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let provider = provider_from_env()?;
        let ticket_secret = secret("STAMPEDE_TICKET_SECRET", &provider, LOCAL_TICKET_SECRET)?;
        let webhook_secret = secret("STAMPEDE_PAYMENT_WEBHOOK_SECRET", &provider, LOCAL_WEBHOOK_SECRET)?;
        let buyer_session_secret =
            secret("STAMPEDE_BUYER_SESSION_SECRET", &provider, LOCAL_BUYER_SESSION_SECRET)?;
        let public_url = public_url(&provider)?;
        Ok(Self {
            database_url: std::env::var("DATABASE_URL")
                .context("DATABASE_URL must be set (postgres://user@host:port/db)")?
                .into(),
            listen: env_or("STAMPEDE_ORIGIN_LISTEN", "127.0.0.1:8080")?,
            pool_size: env_or("STAMPEDE_DB_POOL_SIZE", "16")?,
            request_timeout: Duration::from_millis(env_or("STAMPEDE_REQUEST_TIMEOUT_MS", "10000")?),
            drain_delay: Duration::from_secs(env_or("STAMPEDE_DRAIN_SECONDS", "0")?),
            provider,
            ticket_secret,
            webhook_secret,
            buyer_session_secret,
            sweep_interval: Duration::from_millis(env_or("STAMPEDE_SWEEP_INTERVAL_MS", "5000")?),
            smtp_url: env_or::<String>("STAMPEDE_SMTP_URL", "smtp://127.0.0.1:2525")?.into(),
            mail_from: env_or("STAMPEDE_MAIL_FROM", "Stampede <tickets@stampede.local>")?,
            public_url,
            outbox_lease: outbox_lease()?,
            outbox_lanes: env_or("STAMPEDE_OUTBOX_LANES", &crate::outbox::LANES.to_string())?,
            access: access_from_env()?,
            edge_cache: std::env::var("UPSTASH_REDIS_REST_URL")
                .ok()
                .zip(std::env::var("UPSTASH_REDIS_REST_TOKEN").ok().map(SecretString::from)),
        })
    }
}

/// Local address of the edge in `cargo xtask up`.
pub const LOCAL_PUBLIC_URL: &str = "http://127.0.0.1:3000";

fn public_url(provider: &ProviderSettings) -> anyhow::Result<String> {
    let url = match (std::env::var("STAMPEDE_PUBLIC_URL").ok(), provider) {
        (Some(url), _) => url,
        (None, ProviderSettings::Stripe { .. }) => {
            bail!("STAMPEDE_PUBLIC_URL must be set when real payments are taken")
        }
        (None, ProviderSettings::Sandbox { .. }) => LOCAL_PUBLIC_URL.to_owned(),
    };
    check_public_url(&url)?;
    Ok(url.trim_end_matches('/').to_owned())
}

/// An absolute `http(s)` URL with a host and no query or fragment.
pub fn check_public_url(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("STAMPEDE_PUBLIC_URL={url}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        bail!("STAMPEDE_PUBLIC_URL={url}: give an absolute http(s) URL such as https://tickets.example.com");
    }
    Ok(())
}

fn outbox_lease() -> anyhow::Result<Duration> {
    let lease = Duration::from_secs(env_or("STAMPEDE_OUTBOX_LEASE_SECONDS", "60")?);
    if lease <= crate::outbox::SEND_TIMEOUT * 2 {
        bail!(
            "STAMPEDE_OUTBOX_LEASE_SECONDS must exceed twice the send timeout ({:?})",
            crate::outbox::SEND_TIMEOUT
        );
    }
    Ok(lease)
}

/// A secret: set and long enough, or the local default when payments are sandboxed.
fn secret(name: &str, provider: &ProviderSettings, local: &str) -> anyhow::Result<SecretString> {
    match (std::env::var(name).ok(), provider) {
        (Some(secret), _) if secret.len() >= 16 => Ok(secret.into()),
        (Some(_), _) => bail!("{name} must be at least 16 characters"),
        (None, ProviderSettings::Stripe { .. }) => bail!("{name} must be set when real payments are taken"),
        (None, ProviderSettings::Sandbox { .. }) => Ok(local.into()),
    }
}

/// A variable parsed into `T`, or `default` when unset.
fn env_or<T: std::str::FromStr>(name: &str, default: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value.parse().map_err(|e| anyhow::anyhow!("{name}={value}: {e}"))
}

fn access_from_env() -> anyhow::Result<Option<Verifier>> {
    let Ok(jwks) = std::env::var("STAMPEDE_ACCESS_JWKS") else {
        tracing::warn!("STAMPEDE_ACCESS_JWKS is not set: checkout of queue-protected events is refused");
        return Ok(None);
    };
    let issuer: String = env_or("STAMPEDE_ACCESS_ISSUER", "stampede-edge")?;
    Ok(Some(Verifier::from_jwks(&jwks, &issuer).context("STAMPEDE_ACCESS_JWKS")?))
}

fn provider_from_env() -> anyhow::Result<ProviderSettings> {
    let rate = |name: &str| -> anyhow::Result<f64> {
        let rate: f64 = env_or(name, "0")?;
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} must be between 0 and 1");
        }
        Ok(rate)
    };
    match env_or::<String>("STAMPEDE_PAYMENT_PROVIDER", "sandbox")?.as_str() {
        "sandbox" => Ok(ProviderSettings::Sandbox {
            faults: SandboxFaults {
                latency: Duration::from_millis(env_or("STAMPEDE_SANDBOX_LATENCY_MS", "0")?),
                failure_rate: rate("STAMPEDE_SANDBOX_FAILURE_RATE")?,
                timeout_rate: rate("STAMPEDE_SANDBOX_TIMEOUT_RATE")?,
            },
            ledger_url: std::env::var("STAMPEDE_SANDBOX_DATABASE_URL").ok().map(SecretString::from),
        }),
        "stripe" => Ok(ProviderSettings::Stripe {
            api_base: env_or("STRIPE_API_BASE", "https://api.stripe.com")?,
            secret_key: std::env::var("STRIPE_SECRET_KEY")
                .context("STRIPE_SECRET_KEY must be set for the Stripe provider")?
                .into(),
        }),
        other => bail!("STAMPEDE_PAYMENT_PROVIDER={other}: use `sandbox` or `stripe`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secrets = [
            "postgres://stampede:db-password-1@db.internal/stampede",
            "sk_live_stripe_key_value",
            "ticket-secret-value-0000",
            "webhook-secret-value-000",
            "buyer-secret-value-00000",
            "smtp://mailer:smtp-password-2@mail.internal:587",
            "upstash-token-value-0000",
        ];
        let settings = Settings {
            database_url: secrets[0].into(),
            listen: "127.0.0.1:8080".parse().unwrap(),
            pool_size: 1,
            request_timeout: Duration::from_secs(1),
            drain_delay: Duration::ZERO,
            provider: ProviderSettings::Stripe {
                api_base: "https://api.stripe.com".into(),
                secret_key: secrets[1].into(),
            },
            ticket_secret: secrets[2].into(),
            webhook_secret: secrets[3].into(),
            buyer_session_secret: secrets[4].into(),
            sweep_interval: Duration::from_secs(1),
            smtp_url: secrets[5].into(),
            mail_from: "Stampede <tickets@example.com>".into(),
            public_url: LOCAL_PUBLIC_URL.into(),
            outbox_lease: Duration::from_secs(60),
            outbox_lanes: 1,
            access: None,
            edge_cache: Some(("https://redis.example".into(), secrets[6].into())),
        };
        let printed = format!("{settings:?}");
        for secret in secrets.iter().chain(&["db-password-1", "smtp-password-2"]) {
            assert!(!printed.contains(secret), "{printed} shows {secret}");
        }
        assert!(printed.contains("REDACTED") && printed.contains("api.stripe.com"), "{printed}");
    }

    #[test]
    fn public_urls_are_absolute_http_addresses() {
        for good in ["https://tickets.example.com", "http://127.0.0.1:3000", "https://example.com/shop/"] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "tickets.example.com",
            "/orders",
            "ftp://example.com",
            "https://x.example/?a=1",
            "https://x.example/#f",
            "",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }
}
