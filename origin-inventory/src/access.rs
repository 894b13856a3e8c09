//! Who may use a checkout resource. The decision is made by the
//! [`Checkout`] extractor every checkout handler takes, on the same decoded,
//! typed path parameter the handler uses, so no spelling of a path can reach
//! a handler around it (fail closed: an id that does not parse or names
//! nothing is a 404, a database error a 5xx, never a pass).
//!
//! For a queue-protected event the request needs an access token from the
//! edge's waiting room, checked here too (signature against the edge's
//! published keys, issuer, event, expiry, and not ended): defence in depth,
//! not trust in whoever forwards the request. Its `sub` is the buyer. For
//! other events the buyer is the origin's own buyer session
//! ([`crate::buyers`]).
//!
//! A session ends when its order is placed, its hold released or its visitor
//! leaves the queue: the token's `jti` goes into `ended_access_sessions`, so
//! the next request with it is refused, and the answer carries
//! `Stampede-Session-Ended: <event>` so the edge frees the visitor's slot.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use queue_tokens::{ACCESS_COOKIE_PREFIX, AccessClaims, Kind, SESSION_ENDED_HEADER, TokenError, Verifier};
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::bearer;
use crate::buyers::is_session_token;
use crate::error::{ApiError, ApiPath, Problem};
use crate::metrics::Outcome;

/// What a checkout route's `{id}` names, and how to find its event.
pub trait CheckoutTarget: Send {
    /// Named in the 404 when nothing has the id.
    const WHAT: &'static str;
    /// Selects `event_id` and `queue_enabled` for `$1`, the id.
    const EVENT_SQL: &'static str;
    /// Whether an ended session still gets through, to be answered from
    /// saved results only (a commit retried after its answer was lost).
    const REPLAYS_AFTER_END: bool = false;
    fn new(id: Uuid) -> Self;
}

/// `/api/v1/events/{id}/…`, `/events/{id}/checkout…`: the id is the event.
pub struct EventId(pub Uuid);

impl CheckoutTarget for EventId {
    const WHAT: &'static str = "event";
    const EVENT_SQL: &'static str = "SELECT id AS event_id, queue_enabled FROM events WHERE id = $1";
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// `/api/v1/reservations/{id}…`: the event is the reservation's.
pub struct ReservationId(pub Uuid);

impl CheckoutTarget for ReservationId {
    const WHAT: &'static str = "reservation";
    const EVENT_SQL: &'static str = "SELECT e.id AS event_id, e.queue_enabled
         FROM reservations r JOIN events e ON e.id = r.event_id WHERE r.id = $1";
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// `/api/v1/reservations/{id}/commit`: a reservation whose commit may be
/// retried with the same `Idempotency-Key` after the order ended the session.
pub struct CommitOf(pub Uuid);

impl CheckoutTarget for CommitOf {
    const WHAT: &'static str = ReservationId::WHAT;
    const EVENT_SQL: &'static str = ReservationId::EVENT_SQL;
    const REPLAYS_AFTER_END: bool = true;
    fn new(id: Uuid) -> Self {
        Self(id)
    }
}

/// A checkout request the access rules let through.
pub struct Checkout<T> {
    pub target: T,
    pub event: Uuid,
    buyer: Option<String>,
    /// The waiting-room session, on queue-protected events.
    session: Option<AccessClaims>,
    /// The session has ended: only saved answers may be replayed
    /// ([`CheckoutTarget::REPLAYS_AFTER_END`]).
    ended: bool,
}

#[derive(sqlx::FromRow)]
struct Gate {
    event_id: Uuid,
    queue_enabled: bool,
}

impl<T: CheckoutTarget> FromRequestParts<AppState> for Checkout<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(parts, state).await?;
        let gate: Gate = sqlx::query_as(T::EVENT_SQL)
            .bind(id)
            .fetch_optional(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found(T::WHAT))?;
        let now = chrono::Utc::now().timestamp();
        if !gate.queue_enabled {
            let buyer = state.buyers.buyer_of(&parts.headers, now);
            return Ok(Self { target: T::new(id), event: gate.event_id, buyer, session: None, ended: false });
        }
        let presented = presented_tokens(&parts.headers);
        let ended = ended_among(&state.db, &presented).await?;
        let verdict = match check(state.access.as_ref(), &presented, gate.event_id, &ended, now) {
            Err(Refusal::Ended) if T::REPLAYS_AFTER_END => {
                check(state.access.as_ref(), &presented, gate.event_id, &[], now).map(|claims| (claims, true))
            }
            verdict => verdict.map(|claims| (claims, false)),
        };
        match verdict {
            Ok((claims, ended)) => Ok(Self {
                target: T::new(id),
                event: gate.event_id,
                buyer: Some(claims.sub.clone()),
                session: Some(claims),
                ended,
            }),
            Err(refusal) => {
                state.metrics.count(refusal.outcome());
                Err(refusal.into_error())
            }
        }
    }
}

impl<T> Checkout<T> {
    /// The buyer: the access token's subject, or the buyer session.
    pub fn buyer(&self) -> Result<&str, ApiError> {
        self.buyer.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "buyer_session_required",
                "start a buyer session first: POST /api/v1/buyer-sessions, then send its buyer_token as a bearer token",
            )
        })
    }

    /// Whether the request's session has ended (only on targets that
    /// [replay after the end](CheckoutTarget::REPLAYS_AFTER_END)).
    pub fn session_ended(&self) -> bool {
        self.ended
    }

    /// Ends the waiting-room session this request came with (none on events
    /// without a queue); returns the header that tells the edge.
    pub async fn end_session(
        &self,
        db: &PgPool,
    ) -> Result<Option<[(HeaderName, HeaderValue); 1]>, sqlx::Error> {
        let Some(session) = &self.session else { return Ok(None) };
        end(db, session).await?;
        let value = HeaderValue::from_str(&self.event.to_string()).expect("a UUID is a header value");
        Ok(Some([(HeaderName::from_static(SESSION_ENDED_HEADER), value)]))
    }
}

/// The refusal for an ended session asking for more than a replay.
pub fn session_ended() -> ApiError {
    Refusal::Ended.into_error()
}

async fn end(db: &PgPool, session: &AccessClaims) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ended_access_sessions (jti, event_id, expires_at)
         VALUES ($1, $2::uuid, to_timestamp($3)) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(&session.jti)
    .bind(&session.aud)
    .bind(session.exp as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Which of the presented tokens' `jti`s belong to ended sessions (looked
/// up before verification; only verified tokens are granted anything).
async fn ended_among(db: &PgPool, presented: &[String]) -> Result<Vec<String>, sqlx::Error> {
    #[derive(serde::Deserialize)]
    struct Jti {
        jti: String,
    }
    let jtis: Vec<String> =
        presented.iter().filter_map(|t| queue_tokens::unverified_claims::<Jti>(t)).map(|c| c.jti).collect();
    if jtis.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT jti FROM ended_access_sessions WHERE jti = ANY($1)")
        .bind(&jtis)
        .fetch_all(db)
        .await
}

/// Forgets ended sessions whose tokens have expired anyway.
pub async fn forget_expired_sessions(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM ended_access_sessions WHERE expires_at < now()").execute(db).await?;
    Ok(done.rows_affected())
}

#[derive(Debug, PartialEq)]
enum Refusal {
    Missing,
    Invalid(TokenError),
    WrongEvent,
    Ended,
}

impl Refusal {
    fn outcome(&self) -> Outcome {
        match self {
            Refusal::Missing => Outcome::AccessMissing,
            Refusal::Invalid(_) => Outcome::AccessInvalid,
            Refusal::WrongEvent => Outcome::AccessWrongEvent,
            Refusal::Ended => Outcome::AccessEnded,
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
            Refusal::Ended => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "access_session_ended",
                "this checkout session has ended (order placed, hold released or queue left): join the queue again",
            ),
        }
    }
}

/// The presented token that grants access to `event`, or why none does.
/// Without configured keys every token is refused: fail closed. A token of
/// an ended session is refused even though its signature still verifies.
fn check(
    verifier: Option<&Verifier>,
    presented: &[String],
    event: Uuid,
    ended: &[String],
    now: i64,
) -> Result<AccessClaims, Refusal> {
    if presented.is_empty() {
        return Err(Refusal::Missing);
    }
    let Some(verifier) = verifier else {
        return Err(Refusal::Invalid(TokenError::UnknownKey));
    };
    let mut refusal = Refusal::Missing;
    for token in presented {
        match verifier.verify::<AccessClaims>(token, Kind::Access, &event.to_string(), now) {
            Ok(claims) if ended.contains(&claims.jti) => refusal = Refusal::Ended,
            Ok(claims) => return Ok(claims),
            Err(TokenError::WrongAudience) if refusal != Refusal::Ended => refusal = Refusal::WrongEvent,
            Err(e) if refusal == Refusal::Missing => refusal = Refusal::Invalid(e),
            Err(_) => {}
        }
    }
    Err(refusal)
}

/// The bearer token (unless it is a buyer session) and every access cookie.
fn presented_tokens(headers: &HeaderMap) -> Vec<String> {
    let bearer = bearer(headers).filter(|t| !is_session_token(t)).map(str::to_owned);
    let cookies = edge_core::cookies::cookies(headers)
        .filter(|(name, _)| name.starts_with(ACCESS_COOKIE_PREFIX))
        .map(|(_, value)| value.to_owned());
    bearer.into_iter().chain(cookies).collect()
}

/// The subject of a presented access token for `event` that verifies, ended
/// or not: an ended session may still read what it bought.
pub fn verified_subject(verifier: Option<&Verifier>, headers: &HeaderMap, event: Uuid) -> Option<String> {
    let now = chrono::Utc::now().timestamp();
    check(verifier, &presented_tokens(headers), event, &[], now).ok().map(|claims| claims.sub)
}

/// End the caller's waiting-room session: the edge calls it when a visitor
/// leaves the queue. Idempotent.
#[utoipa::path(delete, path = "/api/v1/events/{id}/access", tag = "queue", security(("accessToken" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Ended (also when it had already)"),
    (status = 401, body = Problem, description = "No valid access token"),
    (status = 403, body = Problem, description = "`access_token_wrong_event`"),
    (status = 404, body = Problem, description = "Not an event id"),
))]
async fn delete_access(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = check(state.access.as_ref(), &presented_tokens(&headers), event, &[], now)
        .map_err(Refusal::into_error)?;
    end(&state.db, &claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delete_access))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use queue_tokens::Keyring;

    const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn token(ring: &Keyring, event: Uuid, exp: i64, jti: &str) -> String {
        let claims = AccessClaims {
            iss: ring.issuer().into(),
            sub: "visitor-1".into(),
            aud: event.to_string(),
            iat: 0,
            exp,
            jti: jti.into(),
        };
        ring.sign(Kind::Access, &claims)
    }

    #[test]
    fn tokens_are_checked_for_event_expiry_signature_and_end() {
        let ring = Keyring::from_config(KEYS, "edge").unwrap();
        let verifier = Verifier::from_jwks(&ring.jwks().to_string(), "edge").unwrap();
        let (event, other) = (Uuid::new_v4(), Uuid::new_v4());
        let now = 1_000;
        let good = vec![token(&ring, event, now + 600, "j1")];
        let check = |presented: &[String], event, ended: &[&str]| {
            let ended: Vec<String> = ended.iter().map(|s| s.to_string()).collect();
            check(Some(&verifier), presented, event, &ended, now)
        };
        assert_eq!(check(&good, event, &[]).unwrap().sub, "visitor-1");
        assert_eq!(check(&[], event, &[]), Err(Refusal::Missing));
        assert_eq!(check(&good, other, &[]), Err(Refusal::WrongEvent));
        assert_eq!(check(&good, event, &["j1"]), Err(Refusal::Ended));
        assert_eq!(check(&good, event, &["j2"]).unwrap().jti, "j1");
        let expired = vec![token(&ring, event, 1, "j1")];
        assert_eq!(check(&expired, event, &[]), Err(Refusal::Invalid(TokenError::Expired)));
        // An ended session next to a live one of the same event: the live one counts.
        let both = vec![good[0].clone(), token(&ring, event, now + 600, "j3")];
        assert_eq!(check(&both, event, &["j1"]).unwrap().jti, "j3");
        assert_eq!(super::check(None, &good, event, &[], now), Err(Refusal::Invalid(TokenError::UnknownKey)));
    }

    #[test]
    fn access_cookies_count_as_presented_and_buyer_sessions_do_not() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "theme=dark; stampede_access_abc=tok1; stampede_queue_abc=q; stampede_buyer=bs1.b.1.t"
                .parse()
                .unwrap(),
        );
        assert_eq!(presented_tokens(&headers), vec!["tok1".to_owned()]);
        headers.insert(header::AUTHORIZATION, "Bearer bs1.b_1.2.ab".parse().unwrap());
        assert_eq!(presented_tokens(&headers), vec!["tok1".to_owned()]);
        headers.insert(header::AUTHORIZATION, "Bearer eyJ.x.y".parse().unwrap());
        assert_eq!(presented_tokens(&headers), vec!["eyJ.x.y".to_owned(), "tok1".to_owned()]);
    }
}
