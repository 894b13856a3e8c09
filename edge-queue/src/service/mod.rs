//! The waiting room's HTTP surface, independent of the runtime:
//!
//! - `POST /api/v1/events/{id}/queue/join`, `GET .../queue/status`,
//!   `GET .../queue/challenge`, `POST .../queue/leave`, `GET .../queue/stats`
//! - `GET /.well-known/jwks.json`
//! - the gatekeeper: `/events/{id}/checkout...`, `/api/v1/events/{id}/seatmap`,
//!   `/api/v1/events/{id}/reservations`, `/api/v1/reservations/...`,
//!   `/api/v1/orders/...` and the order pages `/orders/...` reach the origin
//!   only with a valid access token;
//! - passed through to the origin as they are: the organizer API
//!   (`/api/v1/organizer/...`), payment webhooks (`/webhooks/payments/{provider}`),
//!   `POST /api/v1/buyer-sessions`, `/api/v1/tickets/{code}/qr.svg` and
//!   `/api/openapi.json`, so the edge is the site's one public hostname.

mod credentials;
mod gate;
mod queue;
mod respond;

use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use edge_platform::redis::Redis;
use edge_platform::{Body, Incoming, IntoReply, Reply, Runtime};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use queue_core::page::{Puzzle, waiting_room};
use queue_core::pow;
use queue_core::settings::{Phase, SaleClock as _};
use queue_core::status::{
    State, Status, WaitReason, checkout_path, prequeue_refresh_after_seconds, prequeue_wait_range_seconds,
    refresh_after_seconds,
};
use queue_tokens::{AccessClaims, ChallengeClaims, Claims, Kind, QueueClaims, TokenError};
use serde::Deserialize;
use wire::names::{ACCESS_COOKIE_PREFIX, SESSION_ENDED_HEADER};

use crate::config::Config;
use crate::store::{Admission, Entry, Store, StoreError, Ticket, View};

use credentials::*;
use queue::{JoinBody, NewTicket};
use respond::*;

type Response = http::Response<Vec<u8>>;

/// Every way a request can fail, mapped once to a problem response.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("this edge is misconfigured: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such page")]
    NotFound,
    /// The path exists; `allow` lists the methods it takes.
    #[error("this address takes {allow} only")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    BadRequest(String),
    #[error("you are not in this event's queue; join first")]
    NotInQueue,
    #[error("your visit has ended (order placed, seats released or queue left): join the queue again")]
    SessionEnded,
    #[error("too many joins from your address; try again in a minute")]
    RateLimited,
    #[error("this sale asks for a proof of work: get a challenge and solve it")]
    ProofOfWorkRequired,
    #[error("the proof of work does not solve its challenge")]
    ProofOfWorkInvalid,
    #[error("the access token was refused: {0}")]
    InvalidToken(TokenError),
    #[error("{0}")]
    Organizer(String, StatusCode),
}

impl Problem {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Problem::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
            Problem::Store(StoreError::EventNotFound) | Problem::NotFound => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Problem::Store(StoreError::Origin(_)) => (StatusCode::BAD_GATEWAY, "origin_unavailable"),
            Problem::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable"),
            Problem::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Problem::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Problem::NotInQueue => (StatusCode::NOT_FOUND, "not_in_queue"),
            Problem::SessionEnded => (StatusCode::GONE, "session_ended"),
            Problem::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Problem::ProofOfWorkRequired => (StatusCode::FORBIDDEN, "proof_of_work_required"),
            Problem::ProofOfWorkInvalid => (StatusCode::FORBIDDEN, "proof_of_work_invalid"),
            Problem::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_access_token"),
            Problem::Organizer(_, status) => (*status, "organizer_key_refused"),
        }
    }

    fn into_response(self, runtime: &impl Runtime) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            runtime.log(&format!("edge-queue: {self}"));
        }
        let mut response = json(status, &wire::problem::Problem::new(code, self.to_string()));
        if let Problem::MethodNotAllowed { allow } = self {
            set(&mut response, header::ALLOW, allow);
        }
        match status {
            StatusCode::UNAUTHORIZED => {
                set(&mut response, header::WWW_AUTHENTICATE, "Bearer realm=\"stampede\"")
            }
            StatusCode::TOO_MANY_REQUESTS => set(&mut response, header::RETRY_AFTER, "60"),
            // The store or origin is briefly away: a few seconds, not a storm.
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => {
                set(&mut response, header::RETRY_AFTER, "5");
            }
            _ => {}
        }
        response
    }
}

/// Read once per instance: deriving the signing keys is not free, and a warm
/// instance serves many requests.
fn config(runtime: &impl Runtime) -> Result<&'static Config, Problem> {
    static CONFIG: OnceLock<Result<Config, String>> = OnceLock::new();
    match CONFIG.get_or_init(|| Config::from_runtime(runtime).map_err(|e| e.to_string())) {
        Ok(config) => Ok(config),
        Err(e) => Err(Problem::Config(e.clone())),
    }
}

pub async fn handle<R: Runtime>(runtime: &R, incoming: Incoming) -> Reply<R> {
    let config = match config(runtime) {
        Ok(config) => config,
        Err(problem) => return problem.into_response(runtime).into_reply(),
    };
    let redis = Redis::new(runtime, &config.redis_url, &config.redis_token);
    let store = Store::new(runtime, redis, &config.origin_url);
    let room = Room { runtime, config, store, incoming, now_ms: runtime.now_ms() };
    room.route().await.unwrap_or_else(|problem| problem.into_response(runtime).into_reply())
}

struct Room<'a, R> {
    runtime: &'a R,
    config: &'a Config,
    store: Store<'a, R>,
    incoming: Incoming,
    /// The request's time, read once: every decision about one request is
    /// made at one instant (and the clock is a call out of the component).
    now_ms: i64,
}

impl<R: Runtime> Room<'_, R> {
    async fn route(&self) -> Result<Reply<R>, Problem> {
        let path = self.incoming.request.uri().path().to_owned();
        let method = self.incoming.request.method().clone();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (Method::GET, [".well-known", "jwks.json"]) => {
                let mut response = with_body(StatusCode::OK, "application/json", self.config.jwks().to_vec());
                set(&mut response, header::CACHE_CONTROL, "public, max-age=300");
                Ok(response.into_reply())
            }
            (_, [".well-known", "jwks.json"]) => Err(Problem::MethodNotAllowed { allow: "GET" }),
            (method, ["api", "v1", "events", event, "queue", action]) => {
                let event = event_id(event)?;
                match (method, *action) {
                    (Method::POST, "join") => self.join(&event).await,
                    (Method::GET, "status") => self.status(&event).await,
                    (Method::GET, "challenge") => self.challenge(&event).await,
                    (Method::POST, "leave") => self.leave(&event).await,
                    (Method::GET, "stats") => self.stats(&event).await,
                    (_, "join" | "leave") => Err(Problem::MethodNotAllowed { allow: "POST" }),
                    (_, "status" | "challenge" | "stats") => Err(Problem::MethodNotAllowed { allow: "GET" }),
                    _ => Err(Problem::NotFound),
                }
                .map(IntoReply::into_reply)
            }
            (_, ["events", event, "checkout", ..])
            | (_, ["api", "v1", "events", event, "seatmap" | "reservations"])
            | (_, ["api", "v1", "events", event, "reservations", "current"]) => {
                let event = event_id(event)?;
                self.gate(&event).await
            }
            (_, ["api", "v1", "reservations", id, rest @ ..]) => {
                if event_id(id).is_err() || !matches!(rest, [] | ["commit" | "extend"]) {
                    return Err(Problem::NotFound);
                }
                self.gate_by_origin().await
            }
            // Orders are not queue-protected (the buyer's session or the
            // order's secret link opens them); only well-formed ones go on.
            (_, ["api", "v1", "orders", number, secret @ ..] | ["orders", number, secret @ ..]) => {
                if !is_order_number(number)
                    || !matches!(secret, [] | [_])
                    || !secret.iter().all(|s| is_order_secret(s))
                {
                    return Err(Problem::NotFound);
                }
                self.forward(&[]).await
            }
            (_, ["api", "v1", "organizer", _, ..] | ["organizer", ..])
            | (_, ["webhooks", "payments", _])
            | (_, ["api", "v1", "buyer-sessions"])
            | (_, ["api", "v1", "tickets", _, "qr.svg"])
            | (_, ["api", "openapi.json"]) => self.forward(&[]).await,
            _ => Err(Problem::NotFound),
        }
    }

    fn now_s(&self) -> i64 {
        self.now_ms / 1000
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms).expect("the clock is within chrono's range")
    }
}

/// Order numbers as the origin makes them: `STM-` and ten base-32 characters.
fn is_order_number(text: &str) -> bool {
    text.strip_prefix("STM-").is_some_and(|s| s.len() == 10 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Order secrets: lowercase hex, as long as the origin makes them.
fn is_order_secret(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Event ids are UUIDs; anything else never reaches Redis or the origin.
fn event_id(segment: &str) -> Result<String, Problem> {
    let valid = segment.len() == 36
        && segment.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if valid { Ok(segment.to_ascii_lowercase()) } else { Err(Problem::NotFound) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_must_be_uuids() {
        assert_eq!(
            event_id("0B7C6C1E-5F2A-4C55-9D1E-2F1F3C1D9A01").unwrap(),
            "0b7c6c1e-5f2a-4c55-9d1e-2f1f3c1d9a01"
        );
        for bad in ["", "x", "0b7c6c1e_5f2a-4c55-9d1e-2f1f3c1d9a01", "0b7c6c1e-5f2a-4c55-9d1e-2f1f3c1d9a0z"] {
            assert!(event_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_well_formed_order_paths_go_on() {
        assert!(is_order_number("STM-0123456789") && is_order_number("STM-ABCDEFGHJK"));
        for bad in ["STM-012345678", "STM-01234567890", "stm-0123456789", "STM-01234/6789", "X"] {
            assert!(!is_order_number(bad), "{bad}");
        }
        assert!(is_order_secret(&"ab12".repeat(16)));
        assert!(!is_order_secret(&"AB12".repeat(16)) && !is_order_secret(&"ab1".repeat(16)));
    }
}
