//! The waiting room's access tokens at the origin: which presented token
//! grants a checkout on a queue-protected event, and which sessions have
//! ended. The HTTP side (the [`Checkout`](crate::api::access::Checkout)
//! extractor every checkout handler takes) is in `api::access`.
//!
//! A token is checked here too (signature against the edge's published
//! keys, issuer, event, expiry, and not ended): defence in depth, not trust
//! in whoever forwards the request. Its `sub` is the buyer.
//!
//! A session ends when its order is placed, its hold released or its visitor
//! leaves the queue: the token's `jti` goes into `ended_access_sessions`, so
//! the next request with it is refused, and the answer carries
//! `Stampede-Session-Ended: <event>` so the edge frees the visitor's slot.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use queue_tokens::{AccessClaims, Kind, TokenError, Verifier};
use sqlx::PgPool;
use uuid::Uuid;
use wire::names::ACCESS_COOKIE_PREFIX;

use crate::auth::bearer;
use crate::buyers::is_session_token;
use crate::error::ApiError;
use crate::metrics::Outcome;

/// The edge's published keys, as the origin checks access tokens with them;
/// none configured refuses every token (fail closed).
#[derive(Clone, Default)]
pub struct AccessKeys(Option<Arc<Verifier>>);

impl AccessKeys {
    pub fn new(verifier: Option<Verifier>) -> Self {
        Self(verifier.map(Arc::new))
    }

    pub fn verifier(&self) -> Option<&Verifier> {
        self.0.as_deref()
    }
}

/// The refusal for an ended session asking for more than a replay.
pub fn session_ended() -> ApiError {
    Refusal::Ended.into_error()
}

/// Ends a session: its token is refused from now on.
pub async fn end(db: &PgPool, session: &AccessClaims) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO ended_access_sessions (jti, event_id, expires_at)
         VALUES ($1, $2::text::uuid, to_timestamp($3)) ON CONFLICT (jti) DO NOTHING",
        session.jti,
        session.aud,
        session.exp as f64,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The session ids (`jti`) the presented tokens claim, read before
/// verification: only to look up which sessions have ended, in the same
/// query that finds the event (only verified tokens are granted anything).
pub fn claimed_sessions(presented: &[String]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Jti {
        jti: String,
    }
    presented.iter().filter_map(|t| queue_tokens::unverified_claims::<Jti>(t)).map(|c| c.jti).collect()
}

/// Forgets ended sessions whose tokens have expired anyway.
pub async fn forget_expired_sessions(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM ended_access_sessions WHERE expires_at < now()").execute(db).await?;
    Ok(done.rows_affected())
}

#[derive(Debug, PartialEq)]
pub enum Refusal {
    Missing,
    Invalid(TokenError),
    WrongEvent,
    Ended,
}

impl Refusal {
    pub fn outcome(&self) -> Outcome {
        match self {
            Refusal::Missing => Outcome::AccessMissing,
            Refusal::Invalid(_) => Outcome::AccessInvalid,
            Refusal::WrongEvent => Outcome::AccessWrongEvent,
            Refusal::Ended => Outcome::AccessEnded,
        }
    }

    pub fn into_error(self) -> ApiError {
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
pub fn check(
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
pub fn presented_tokens(headers: &HeaderMap) -> Vec<String> {
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

/// Who checks that a checkout step's buyer may check out on its event.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GateCheck<'a> {
    /// The checkout gate did, before.
    Passed,
    /// The buyer is a buyer session, which counts only on an event without
    /// a waiting room: the statement doing the step checks that first, in
    /// its own transaction.
    BuyerSession,
    /// The buyer is the visitor of an access token the origin verified for
    /// `event`, which counts only while `event` has a waiting room and the
    /// token's `session` has not ended: the statement checks both first.
    AccessSession { event: Uuid, session: &'a str },
}

impl GateCheck<'_> {
    /// For statements: whether the event must have no waiting room.
    pub fn unqueued(&self) -> bool {
        matches!(self, GateCheck::BuyerSession)
    }

    /// For statements: the event that must have a waiting room, and the
    /// session that must not have ended.
    pub fn admitted(&self) -> (Option<Uuid>, Option<&str>) {
        match self {
            GateCheck::AccessSession { event, session } => (Some(*event), Some(session)),
            _ => (None, None),
        }
    }
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
