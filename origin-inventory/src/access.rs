//! Checkout traffic for queue-protected events needs an access token from
//! the edge's waiting room. The origin checks it itself (signature against
//! the edge's published keys, issuer, event, expiry): defence in depth, not
//! trust in whoever forwards the request.
//!
//! A verified token also names the buyer (its `sub` becomes `X-Buyer-Id`),
//! so per-buyer limits bind to the admitted visitor. When a session ends
//! here (order placed, hold released) the answer carries
//! `Stampede-Session-Ended: <event>`, and the edge frees the visitor's slot.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use queue_tokens::{ACCESS_COOKIE_PREFIX, AccessClaims, Kind, SESSION_ENDED_HEADER, TokenError, Verifier};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::metrics::Outcome;

/// A checkout resource and how to find the event it belongs to.
enum Protected<'a> {
    Event(Uuid),
    Reservation { id: Uuid, ends_session: bool },
    Order(&'a str),
}

impl<'a> Protected<'a> {
    fn of(method: &Method, path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["api", "v1", "events", id, "seatmap" | "reservations"]
            | ["events", id, "checkout"]
            | ["events", id, "checkout", "seat-changes"] => id.parse().ok().map(Protected::Event),
            ["api", "v1", "reservations", id, rest @ ..] => {
                let ends_session =
                    matches!((method, rest), (&Method::DELETE, []) | (&Method::POST, ["commit"]));
                id.parse().ok().map(|id| Protected::Reservation { id, ends_session })
            }
            ["api", "v1", "orders", number] | ["orders", number] => Some(Protected::Order(number)),
            _ => None,
        }
    }

    /// The event and whether its queue is on; `None` if the resource does
    /// not exist (the handler then answers 404 as usual).
    async fn event(&self, db: &PgPool) -> Result<Option<(Uuid, bool)>, sqlx::Error> {
        let query = match self {
            Protected::Event(id) => sqlx::query_as("SELECT id, queue_enabled FROM events WHERE id = $1").bind(*id),
            Protected::Reservation { id, .. } => sqlx::query_as(
                "SELECT e.id, e.queue_enabled FROM reservations r JOIN events e ON e.id = r.event_id WHERE r.id = $1",
            )
            .bind(*id),
            Protected::Order(number) => sqlx::query_as(
                "SELECT e.id, e.queue_enabled FROM orders o JOIN events e ON e.id = o.event_id
                 WHERE o.order_number = $1",
            )
            .bind(*number),
        };
        query.fetch_optional(db).await
    }

    fn ends_session(&self) -> bool {
        matches!(self, Protected::Reservation { ends_session: true, .. })
    }
}

/// Middleware in front of every route: lets through what is not a
/// checkout resource of a queue-protected event, checks the rest.
pub async fn require_access(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let Some(resource) = Protected::of(request.method(), &path) else {
        return next.run(request).await;
    };
    let (event, queued) = match resource.event(&state.db).await {
        Ok(Some(found)) => found,
        Ok(None) => return next.run(request).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !queued {
        return next.run(request).await;
    }
    let claims = match check(state.access.as_ref(), request.headers(), event) {
        Ok(claims) => claims,
        Err(refusal) => {
            state.metrics.count(refusal.outcome());
            return refusal.into_error().into_response();
        }
    };
    let buyer = HeaderValue::from_str(&claims.sub).expect("a verified subject is a header value");
    request.headers_mut().insert("x-buyer-id", buyer);
    let mut response = next.run(request).await;
    if resource.ends_session() && matches!(response.status().as_u16(), 200 | 201 | 204) {
        let value = HeaderValue::from_str(&event.to_string()).expect("a UUID is a header value");
        response.headers_mut().insert(SESSION_ENDED_HEADER, value);
    }
    response
}

#[derive(Debug, PartialEq)]
enum Refusal {
    Missing,
    Invalid(TokenError),
    WrongEvent,
}

impl Refusal {
    fn outcome(&self) -> Outcome {
        match self {
            Refusal::Missing => Outcome::AccessMissing,
            Refusal::Invalid(_) => Outcome::AccessInvalid,
            Refusal::WrongEvent => Outcome::AccessWrongEvent,
        }
    }

    fn into_error(self) -> ApiError {
        match self {
            Refusal::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "access_token_required",
                "this sale is queue-protected: enter through the waiting room for an access token",
            ),
            Refusal::Invalid(e) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_access_token", e.to_string())
                    .with("reason", e.code())
            }
            Refusal::WrongEvent => ApiError::new(
                StatusCode::FORBIDDEN,
                "access_token_wrong_event",
                "this access token was issued for another event",
            ),
        }
    }
}

/// The presented token that grants access to `event`, or why none does.
/// Without configured keys every token is refused: fail closed.
fn check(verifier: Option<&Verifier>, headers: &HeaderMap, event: Uuid) -> Result<AccessClaims, Refusal> {
    let presented = presented_tokens(headers);
    if presented.is_empty() {
        return Err(Refusal::Missing);
    }
    let Some(verifier) = verifier else {
        return Err(Refusal::Invalid(TokenError::UnknownKey));
    };
    let now = chrono::Utc::now().timestamp();
    let mut refusal = Refusal::Missing;
    for token in presented {
        match verifier.verify::<AccessClaims>(&token, Kind::Access, &event.to_string(), now) {
            Ok(claims) => return Ok(claims),
            Err(TokenError::WrongAudience) => refusal = Refusal::WrongEvent,
            Err(e) if refusal == Refusal::Missing => refusal = Refusal::Invalid(e),
            Err(_) => {}
        }
    }
    Err(refusal)
}

/// The bearer token and every access cookie.
fn presented_tokens(headers: &HeaderMap) -> Vec<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let cookies = edge_core::cookies::cookies(headers)
        .filter(|(name, _)| name.starts_with(ACCESS_COOKIE_PREFIX))
        .map(|(_, value)| value.to_owned());
    bearer.into_iter().chain(cookies).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_tokens::Keyring;

    const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn token(ring: &Keyring, event: Uuid, exp: i64) -> String {
        let claims = AccessClaims {
            iss: ring.issuer().into(),
            sub: "visitor-1".into(),
            aud: event.to_string(),
            iat: 0,
            exp,
            jti: "j".into(),
        };
        ring.sign(Kind::Access, &claims)
    }

    fn with_bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn tokens_are_checked_for_event_expiry_and_signature() {
        let ring = Keyring::from_config(KEYS, "edge").unwrap();
        let verifier = Verifier::from_jwks(&ring.jwks().to_string(), "edge").unwrap();
        let (event, other) = (Uuid::new_v4(), Uuid::new_v4());
        let later = chrono::Utc::now().timestamp() + 600;
        let good = token(&ring, event, later);
        assert_eq!(check(Some(&verifier), &with_bearer(&good), event).unwrap().sub, "visitor-1");
        assert_eq!(check(Some(&verifier), &HeaderMap::new(), event), Err(Refusal::Missing));
        assert_eq!(check(Some(&verifier), &with_bearer(&good), other), Err(Refusal::WrongEvent));
        let expired = token(&ring, event, 1);
        assert_eq!(
            check(Some(&verifier), &with_bearer(&expired), event),
            Err(Refusal::Invalid(TokenError::Expired))
        );
        assert_eq!(check(None, &with_bearer(&good), event), Err(Refusal::Invalid(TokenError::UnknownKey)));
    }

    #[test]
    fn access_cookies_count_as_presented() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "theme=dark; stampede_access_abc=tok1; stampede_queue_abc=q".parse().unwrap(),
        );
        assert_eq!(presented_tokens(&headers), vec!["tok1".to_owned()]);
    }

    #[test]
    fn only_checkout_resources_are_protected_and_only_commit_and_release_end_sessions() {
        let id = Uuid::new_v4();
        let of = |method: Method, path: String| Protected::of(&method, Box::leak(path.into_boxed_str()));
        assert!(of(Method::GET, format!("/api/v1/events/{id}")).is_none());
        assert!(of(Method::GET, format!("/api/v1/events/{id}/seatmap")).is_some());
        assert!(of(Method::GET, format!("/events/{id}/checkout/seat-changes")).is_some());
        assert!(of(Method::GET, "/api/v1/orders/ST-1".into()).is_some());
        let ends = |method, path| of(method, path).is_some_and(|p| p.ends_session());
        assert!(ends(Method::POST, format!("/api/v1/reservations/{id}/commit")));
        assert!(ends(Method::DELETE, format!("/api/v1/reservations/{id}")));
        assert!(!ends(Method::PATCH, format!("/api/v1/reservations/{id}/extend")));
        assert!(!ends(Method::GET, format!("/api/v1/reservations/{id}")));
    }
}
