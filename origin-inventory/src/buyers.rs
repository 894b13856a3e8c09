//! Buyer sessions: the origin names every buyer itself. A session token is
//! `bs1.<buyer id>.<expiry>.<tag>`, the tag an HMAC-SHA256 over id and
//! expiry with the origin's session secret, so a client can neither choose
//! its buyer id nor take someone else's. Browsers carry it in the
//! `stampede_buyer` cookie (set by the checkout page), apps as a bearer
//! token from `POST /api/v1/buyer-sessions`.
//!
//! On queue-protected events the waiting room's access token names the
//! buyer instead (its `sub`), see [`crate::access`].

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use utoipa::ToSchema;

use crate::auth::bearer;

/// The browser's buyer session.
pub const BUYER_COOKIE: &str = "stampede_buyer";
/// Tokens of this version start with it; anything else is not a session.
const PREFIX: &str = "bs1";
/// How long a buyer session lasts.
pub const SESSION_SECONDS: i64 = 30 * 24 * 3600;

/// Issues and checks buyer sessions with the origin's secret.
#[derive(Clone)]
pub struct BuyerSessions {
    secret: Arc<[u8]>,
}

/// A session just issued.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct IssuedSession {
    pub buyer_id: String,
    pub buyer_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl BuyerSessions {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: secret.into() }
    }

    fn tag(&self, id: &str, expires_at: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(format!("buyer:{id}:{expires_at}").as_bytes());
        mac
    }

    /// A new buyer with a random id (128 bits), valid for [`SESSION_SECONDS`].
    pub fn issue(&self, now: i64) -> IssuedSession {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let buyer_id = format!("b_{}", hex::encode(bytes));
        let expires_at = now + SESSION_SECONDS;
        let tag = hex::encode(self.tag(&buyer_id, expires_at).finalize().into_bytes());
        IssuedSession { buyer_token: format!("{PREFIX}.{buyer_id}.{expires_at}.{tag}"), buyer_id, expires_at }
    }

    /// The buyer id of an authentic, unexpired session token.
    pub fn verify(&self, token: &str, now: i64) -> Option<String> {
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(id), Some(expiry), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires_at: i64 = expiry.parse().ok()?;
        let given = hex::decode(tag).ok()?;
        self.tag(id, expires_at).verify_slice(&given).ok()?;
        (expires_at > now).then(|| id.to_owned())
    }

    /// The buyer a request comes from: its bearer session, else its cookie.
    pub fn buyer_of(&self, headers: &HeaderMap, now: i64) -> Option<String> {
        presented(headers).find_map(|token| self.verify(token, now))
    }
}

/// Whether `token` is shaped like a buyer session (not an access token).
pub fn is_session_token(token: &str) -> bool {
    token.starts_with(PREFIX) && token.as_bytes().get(PREFIX.len()) == Some(&b'.')
}

fn presented(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let bearer = bearer(headers).filter(|t| is_session_token(t));
    let cookie =
        edge_core::cookies::cookies(headers).filter(|(name, _)| *name == BUYER_COOKIE).map(|(_, v)| v);
    bearer.into_iter().chain(cookie)
}

/// The `Set-Cookie` value that gives a browser `session`.
pub fn session_cookie(session: &IssuedSession) -> HeaderValue {
    let cookie = edge_core::cookies::credential(BUYER_COOKIE, &session.buyer_token, SESSION_SECONDS, false);
    HeaderValue::from_str(&cookie).expect("tokens are cookie-safe")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn sessions_verify_until_they_expire_and_resist_tampering() {
        let sessions = BuyerSessions::new(b"secret-of-sixteen+");
        let issued = sessions.issue(1_000);
        assert!(issued.buyer_id.starts_with("b_") && issued.buyer_id.len() == 34);
        assert_eq!(sessions.verify(&issued.buyer_token, 1_000).as_deref(), Some(issued.buyer_id.as_str()));
        assert_eq!(sessions.verify(&issued.buyer_token, issued.expires_at), None, "expired");
        let other_buyer = issued.buyer_token.replace(&issued.buyer_id, "b_00000000000000000000000000000000");
        let later =
            issued.buyer_token.replace(&issued.expires_at.to_string(), &(issued.expires_at + 1).to_string());
        let foreign = BuyerSessions::new(b"another-secret-16").issue(1_000).buyer_token;
        for forged in [other_buyer, later, foreign, "bs1.x.1.zz".into(), "bs1".into(), String::new()] {
            assert_eq!(sessions.verify(&forged, 1_000), None, "{forged}");
        }
        assert_ne!(sessions.issue(1_000).buyer_id, issued.buyer_id);
    }

    #[test]
    fn the_bearer_session_comes_before_the_cookie() {
        let sessions = BuyerSessions::new(b"secret-of-sixteen+");
        let (app, browser) = (sessions.issue(0), sessions.issue(0));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("{BUYER_COOKIE}={}", browser.buyer_token).parse().unwrap());
        assert_eq!(sessions.buyer_of(&headers, 1), Some(browser.buyer_id.clone()));
        headers.insert(header::AUTHORIZATION, format!("Bearer {}", app.buyer_token).parse().unwrap());
        assert_eq!(sessions.buyer_of(&headers, 1), Some(app.buyer_id));
        assert!(is_session_token(&browser.buyer_token) && !is_session_token("eyJhbGciOi.x.y"));
    }
}
