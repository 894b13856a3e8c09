//! Who the visitor is: the tokens presented (bearer, then cookie) and what
//! they verify to; the puzzle tokens the edge hands out; the cookies it
//! sets.

use super::*;

/// How long a proof-of-work challenge may take to solve.
const CHALLENGE_SECONDS: i64 = 120;

impl<R: Runtime> Room<'_, R> {
    pub(super) fn bearer(&self) -> Option<&str> {
        let authorization = self.incoming.request.headers().get(header::AUTHORIZATION)?;
        authorization.to_str().ok()?.strip_prefix("Bearer ")
    }

    /// Tokens the visitor presented: the bearer token, then the cookie.
    pub(super) fn presented<'s>(&'s self, cookie: &'s str) -> impl Iterator<Item = &'s str> {
        self.bearer().into_iter().chain(cookie_value(self.incoming.request.headers(), cookie))
    }

    /// The first presented token of `kind` for `event` that verifies.
    /// Refusals other than a token of another kind are counted.
    pub(super) async fn verified<C: Claims + serde::de::DeserializeOwned>(
        &self,
        event: &str,
        kind: Kind,
        cookie: &str,
    ) -> Result<Option<C>, TokenError> {
        let mut refusal = None;
        for token in self.presented(cookie) {
            match self.config.keys.verifier().verify::<C>(token, kind, event, self.now_s()) {
                Ok(claims) => return Ok(Some(claims)),
                Err(TokenError::WrongKind) => {}
                Err(e) => {
                    self.store.count_rejected(event, e.code()).await;
                    refusal = Some(e);
                }
            }
        }
        refusal.map_or(Ok(None), Err)
    }

    pub(super) async fn ticket(&self, event: &str) -> Option<QueueClaims> {
        self.verified(event, Kind::Queue, &queue_cookie(event)).await.ok().flatten()
    }

    pub(super) async fn access(&self, event: &str) -> Result<Option<AccessClaims>, TokenError> {
        self.verified(event, Kind::Access, &access_cookie(event)).await
    }

    pub(super) fn challenge_token(&self, event: &str, bits: u8) -> String {
        let claims = ChallengeClaims {
            iss: self.config.keys.issuer().to_owned(),
            aud: event.to_owned(),
            exp: self.now_s() + CHALLENGE_SECONDS,
            jti: hex(&self.runtime.random()[..16]),
            bits: bits.min(pow::MAX_BITS),
        };
        self.config.keys.sign(Kind::Challenge, &claims)
    }

    pub(super) fn set_cookies(
        &self,
        response: &mut Response,
        event: &str,
        view: &View,
        queue_token: Option<&str>,
        access_token: Option<&str>,
    ) {
        let secure = self.incoming.https;
        if let Some(token) = queue_token {
            append_cookie(
                response,
                &edge_core::cookies::credential(&queue_cookie(event), token, 86_400, secure),
            );
        }
        if let Some(token) = access_token {
            let age = i64::from(view.settings.session_duration_seconds);
            append_cookie(
                response,
                &edge_core::cookies::credential(&access_cookie(event), token, age, secure),
            );
        }
    }
}

pub(super) fn queue_cookie(event: &str) -> String {
    format!("stampede_queue_{event}")
}

pub(super) fn access_cookie(event: &str) -> String {
    format!("{ACCESS_COOKIE_PREFIX}{event}")
}

pub(super) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    edge_core::cookies::cookies(headers).find(|(n, _)| *n == name).map(|(_, value)| value)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; stampede_access_e=tok; b=2"));
        assert_eq!(cookie_value(&headers, "stampede_access_e"), Some("tok"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }
}
