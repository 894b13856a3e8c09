//! Sending mail over pooled SMTP connections with Nagle's algorithm off.
//!
//! lettre 0.11 writes a message's body and the closing `.` line as two
//! writes and leaves Nagle's algorithm on, so the closing line waits for
//! the server to acknowledge the body, which the server's kernel delays by
//! up to 40 ms: one such wait per message on each connection. Measured on
//! loopback against the local aiosmtpd, the same SMTP exchange makes 22
//! messages/s on one connection with Nagle on and 760 with `TCP_NODELAY`.
//! lettre's own pool offers no way to set it (upstream sets it from a
//! later release on), so the outbox opens its connections here, with
//! lettre's client speaking SMTP over them.
//!
//! The URL forms are lettre's: `smtp://host:port` (plain),
//! `smtp://host?tls=required` or `?tls=opportunistic` (STARTTLS, port 587
//! by default), `smtps://host` (TLS from the start, port 465), with
//! optional `user:password@` and `/hello-name`. Connections under
//! `smtps://` are opened by lettre itself, which wraps the socket in TLS
//! before the greeting and cannot be asked for `TCP_NODELAY`: they keep
//! the wait.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

/// A URL that does not name a usable SMTP server.
#[derive(Debug, thiserror::Error)]
pub enum MailerUrlError {
    #[error("not a URL: {0}")]
    Syntax(#[from] url::ParseError),
    #[error("an SMTP URL needs a host")]
    NoHost,
    #[error("use smtp:// (with ?tls=required or ?tls=opportunistic for STARTTLS) or smtps://, not {0}")]
    Scheme(String),
    #[error("the user or password is not UTF-8 once decoded")]
    Credentials,
    #[error("TLS: {0}")]
    Tls(#[from] lettre::transport::smtp::Error),
}

/// How a connection is secured.
enum Security {
    Plain,
    /// STARTTLS; `required` refuses a server that does not offer it.
    StartTls {
        tls: TlsParameters,
        required: bool,
    },
    /// TLS from the first byte (`smtps://`).
    Implicit(TlsParameters),
}

/// Where mail goes and how to log in there.
struct Server {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
}

impl Server {
    fn parse(url: &str) -> Result<Self, MailerUrlError> {
        let url = url::Url::parse(url)?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(MailerUrlError::NoHost)?.to_owned();
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some(mode @ ("required" | "opportunistic"))) => {
                let tls = TlsParameters::new(host.clone())?;
                (Security::StartTls { tls, required: mode == "required" }, 587)
            }
            ("smtps", _) => (Security::Implicit(TlsParameters::new(host.clone())?), 465),
            (scheme, tls) => {
                return Err(MailerUrlError::Scheme(match tls {
                    Some(tls) => format!("{scheme}://…?tls={tls}"),
                    None => format!("{scheme}://"),
                }));
            }
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let decoded = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| MailerUrlError::Credentials)
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decoded(url.username())?, decoded(password)?)),
            None => None,
        };
        Ok(Self { port: url.port().unwrap_or(default_port), host, security, hello, credentials })
    }
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot reach the SMTP server: {0}")]
    Connect(#[from] std::io::Error),
    #[error("the SMTP server took longer than {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// An SMTP client keeping up to `max_idle` connections open between sends.
pub struct Mailer {
    server: Server,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    /// Longest a connection, or one message's exchange, may take.
    timeout: Duration,
}

/// A connection kept open between sends, and since when.
struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// How long a connection may have been idle and still be used without a
/// `NOOP` first. Servers close idle connections after minutes (RFC 5321
/// gives a server five), and while the outbox is busy its connections are
/// idle for milliseconds: a `NOOP` before each message was one of five
/// round trips, and a seventh of the local mail server's CPU per email. A
/// connection closed within this time anyway (a server restarting, or
/// ending connections after some messages) costs that send a second
/// connection (see [`Mailer::send`]).
const UNTESTED_IDLE: Duration = Duration::from_secs(2);

impl Mailer {
    pub fn new(url: &str, max_idle: usize, timeout: Duration) -> Result<Self, MailerUrlError> {
        Ok(Self { server: Server::parse(url)?, idle: Mutex::default(), max_idle, timeout })
    }

    /// Sends one message. A connection that fails is dropped. A send that
    /// fails on a connection reused without a `NOOP`, other than by the
    /// server refusing it for good (5xx), is made once more on a new
    /// connection: the server may have closed the old one (as the outbox
    /// would send it again anyway, a little later).
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let exchange = async {
            let (connection, known_alive) = self.connection().await?;
            match self.send_over(connection, envelope, message).await {
                Err(SendError::Smtp(e)) if !known_alive && !e.is_permanent() => {
                    self.send_over(self.connect().await?, envelope, message).await
                }
                sent => sent,
            }
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Err(SendError::Timeout(self.timeout)))
    }

    async fn send_over(
        &self,
        mut connection: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SendError> {
        match connection.send(envelope, message).await {
            Ok(_) => {
                self.put_back(connection);
                Ok(())
            }
            Err(e) => {
                connection.abort().await;
                Err(SendError::Smtp(e))
            }
        }
    }

    /// An idle connection, or a new one; and whether it is known to be
    /// alive. A connection idle for longer than [`UNTESTED_IDLE`] is first
    /// asked with a `NOOP` (as lettre's pool asks every time).
    async fn connection(&self) -> Result<(AsyncSmtpConnection, bool), SendError> {
        loop {
            let idle = self.idle.lock().expect("idle connections lock").pop();
            let Some(Idle { mut connection, since }) = idle else { return Ok((self.connect().await?, true)) };
            if since.elapsed() < UNTESTED_IDLE {
                return Ok((connection, false));
            }
            if connection.test_connected().await {
                return Ok((connection, true));
            }
            connection.abort().await;
        }
    }

    fn put_back(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().expect("idle connections lock");
        if !connection.has_broken() && idle.len() < self.max_idle {
            idle.push(Idle { connection, since: Instant::now() });
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let Server { host, port, security, hello, credentials } = &self.server;
        let mut connection = match security {
            Security::Implicit(tls) => {
                let timeout = Some(self.timeout);
                AsyncSmtpConnection::connect_tokio1(
                    (host.as_str(), *port),
                    timeout,
                    hello,
                    Some(tls.clone()),
                    None,
                )
                .await?
            }
            Security::Plain | Security::StartTls { .. } => {
                let socket = TcpStream::connect((host.as_str(), *port)).await?;
                // The point of this module (see above).
                socket.set_nodelay(true)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(socket), hello).await?
            }
        };
        if let Security::StartTls { tls, required } = security
            && (*required || connection.can_starttls())
        {
            connection.starttls(tls.clone(), hello).await?;
        }
        if let Some(credentials) = credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> Server {
        Server::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn urls_name_the_server_its_security_and_login() {
        let plain = parsed("smtp://127.0.0.1:2525");
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 2525));
        assert!(matches!(plain.security, Security::Plain) && plain.credentials.is_none());

        let submission = parsed("smtp://mail.example.com?tls=required");
        assert_eq!(submission.port, 587);
        assert!(matches!(submission.security, Security::StartTls { required: true, .. }));
        let opportunistic = parsed("smtp://mail.example.com:2587?tls=opportunistic");
        assert_eq!(opportunistic.port, 2587);
        assert!(matches!(opportunistic.security, Security::StartTls { required: false, .. }));

        let wrapped = parsed("smtps://ada%40example.com:p%C3%A4ss%2Fw@mail.example.com/shop.example.com");
        assert_eq!(wrapped.port, 465);
        assert!(matches!(wrapped.security, Security::Implicit(_)));
        assert_eq!(wrapped.hello, ClientId::Domain("shop.example.com".into()));
        let expected = Credentials::new("ada@example.com".into(), "päss/w".into());
        assert_eq!(wrapped.credentials, Some(expected), "user and password are percent-decoded");
        assert_eq!(parsed("smtp://localhost").hello, ClientId::default());
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("127.0.0.1:25", "not a URL"),
            ("smtp:///", "needs a host"),
            ("http://mail.example.com", "not http://"),
            ("smtp://mail.example.com?tls=always", "?tls=always"),
            ("smtp://%FF:%FF@mail.example.com", "UTF-8"),
        ] {
            let error = Server::parse(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(reason), "{url}: {error:?}");
        }
    }
}
