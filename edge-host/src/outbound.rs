//! `allowed_outbound_hosts`: which URLs a component may call.
//!
//! Entries follow Spin's syntax, `scheme://host[:port]`, where the scheme
//! may be `*`, the host `*` or `*.domain`, and the port `*` or a number
//! (default: the scheme's own). A denied request never leaves the host: the
//! guest sees `error-code::http-request-denied`.
//!
//! Allowed plain-HTTP requests share one pooled client for the whole host,
//! so a component calling its origin or the Redis gateway on every request
//! reuses warm connections instead of opening one per call. HTTPS goes
//! through Wasmtime's default client (a connection per request).

use std::time::Duration;

use http::Uri;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomain(String),
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (scheme, rest) = entry.split_once("://").ok_or("expected `scheme://host[:port]`")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err("paths are not allowed, only `scheme://host[:port]`".into());
        }
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            other => return Err(format!("unsupported scheme `{other}`")),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) => {
                let port = port.parse().map_err(|_| format!("invalid port `{port}`"))?;
                (host, Some(port))
            }
            None => {
                let port = match scheme.as_deref() {
                    Some("http") => 80,
                    Some("https") => 443,
                    _ => return Err("a `*` scheme needs an explicit port (or `:*`)".into()),
                };
                (rest, Some(port))
            }
        };
        let host = match host {
            "" => return Err("missing host".into()),
            "*" => HostPattern::Any,
            h => match h.strip_prefix("*.") {
                Some(domain) => HostPattern::Subdomain(domain.to_ascii_lowercase()),
                None => HostPattern::Exact(h.to_ascii_lowercase()),
            },
        };
        Ok(Self { scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let port_ok = self.port.is_none_or(|p| p == port);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomain(d) => host.strip_suffix(d.as_str()).is_some_and(|sub| sub.ends_with('.')),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// The whole list for one component. Empty means no outbound HTTP at all.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        Self { allowed }
    }

    pub fn allows(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let host = host.to_ascii_lowercase();
        self.allowed.iter().any(|a| a.matches(scheme, &host, port))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>),
                Error,
            >,
        > + Send,
>;

/// Keep-alive connections for plain-HTTP calls, shared by every instance.
#[derive(Clone)]
pub struct ConnectionPool(Client<HttpConnector, WasiBody>);

impl ConnectionPool {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        // Small request/response exchanges: Nagle's delay would dominate them.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self(
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector),
        )
    }

    async fn send(
        self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let sent = self.0.request(request);
        let response = match options.and_then(|o| o.first_byte_timeout) {
            Some(limit) => {
                tokio::time::timeout(limit, sent).await.map_err(|_| Error::ConnectionReadTimeout)?
            }
            None => sent.await,
        }
        .map_err(|e| {
            if e.is_connect() { Error::ConnectionRefused } else { Error::InternalError(Some(e.to_string())) }
        })?;
        Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
    }
}

impl Default for ConnectionPool {
    fn default() -> Self {
        Self::new()
    }
}

/// The `wasi:http` hooks of one instance: enforce the component's policy,
/// then send through the shared pool (HTTP) or Wasmtime's client (HTTPS).
pub struct OutboundHooks {
    policy: OutboundPolicy,
    pool: ConnectionPool,
}

impl OutboundHooks {
    pub fn new(policy: OutboundPolicy, pool: ConnectionPool) -> Self {
        Self { policy, pool }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        if !self.policy.allows(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outbound request denied by allowed_outbound_hosts");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if request.uri().scheme_str() == Some("http") {
            let pool = self.pool.clone();
            return Box::new(async move {
                let response = pool.send(request, options).await?;
                // The pool drives its connections itself.
                let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
                Ok((response, io))
            });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
            Ok((response.map(http_body_util::BodyExt::boxed_unsync), io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(entries.iter().map(|e| AllowedHost::parse(e).unwrap()).collect())
    }

    fn allows(p: &OutboundPolicy, url: &str) -> bool {
        p.allows(&url.parse().unwrap())
    }

    #[test]
    fn exact_host_and_port() {
        let p = policy(&["http://127.0.0.1:8080"]);
        assert!(allows(&p, "http://127.0.0.1:8080/api/v1/events"));
        assert!(!allows(&p, "http://127.0.0.1:8081/"));
        assert!(!allows(&p, "https://127.0.0.1:8080/"));
        assert!(!allows(&p, "http://localhost:8080/"));
    }

    #[test]
    fn default_ports_wildcards_and_subdomains() {
        let p = policy(&["https://*.upstash.io", "http://localhost:*"]);
        assert!(allows(&p, "https://eu1-cat.upstash.io/pipeline"));
        assert!(!allows(&p, "https://upstash.io/"));
        assert!(!allows(&p, "https://evilupstash.io/"));
        assert!(!allows(&p, "https://x.upstash.io:8443/"));
        assert!(allows(&p, "http://localhost:1234/"));
        assert!(allows(&policy(&["*://*:*"]), "https://anything.example:9/"));
    }

    #[test]
    fn no_entries_deny_everything_and_bad_entries_are_refused() {
        assert!(!allows(&OutboundPolicy::default(), "http://127.0.0.1/"));
        for bad in ["127.0.0.1:80", "ftp://x:21", "http://x:port", "http://x/path", "*://x", "http://"] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
