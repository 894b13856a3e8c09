//! Signed tokens of the waiting room, as standard JWTs (RFC 7519).
//!
//! Access tokens, which the origin checks, are signed with EdDSA over
//! Ed25519 (RFC 8037). Queue tickets and join puzzles never leave the edge:
//! the edge issues them and only the edge checks them, on every status poll.
//! They are signed with HS256 (RFC 7518) under a key derived from the same
//! Ed25519 seed, so they need no configuration of their own and are as hard
//! to forge, and checking one costs a hash instead of a curve operation
//! (an Ed25519 verification was most of a poll's CPU in Wasm).
//!
//! The edge holds a [`Keyring`]: one key signs, older keys still verify, so
//! a key can be rotated without logging anyone out. The origin holds only a
//! [`Verifier`] built from the published JWKS, never a private key, so it
//! can check access tokens and nothing else.
//!
//! The kind of a token travels in the JOSE `typ` header (`at+jwt` for
//! access tokens, as in RFC 9068) and decides its algorithm, so a queue
//! ticket can never be replayed as an access token, and no header can pick
//! the algorithm it is checked with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use hmac::{Hmac, Mac as _};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// What a token grants; part of the signed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A place in the queue.
    Queue,
    /// Entry to checkout for one session.
    Access,
    /// A proof-of-work puzzle handed out before a join.
    Challenge,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Queue, Kind::Access, Kind::Challenge];

    fn typ(self) -> &'static str {
        match self {
            Kind::Queue => "queue+jwt",
            Kind::Access => "at+jwt",
            Kind::Challenge => "pow+jwt",
        }
    }

    /// Only access tokens are checked outside the edge, so only they need a
    /// public-key signature.
    fn alg(self) -> &'static str {
        match self {
            Kind::Access => "EdDSA",
            Kind::Queue | Kind::Challenge => "HS256",
        }
    }
}

type HmacSha256 = Hmac<sha2::Sha256>;

/// The MAC key of the edge-only kinds, derived from an Ed25519 seed (an
/// HKDF-Expand step: the seed is already uniformly random).
fn mac_key(seed: &[u8; 32]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(b"stampede edge-only tokens v1\x01");
    mac.finalize().into_bytes().into()
}

/// HMAC keyed once per key: each token then costs a copy of the keyed
/// state instead of hashing the key again.
fn keyed(key: &[u8; 32]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
}

fn mac(key: &HmacSha256, signing_input: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(signing_input);
    mac
}

/// Why a token was refused. [`TokenError::code`] is stable: it is counted
/// and returned to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not signed with EdDSA")]
    UnsupportedAlgorithm,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("this kind of token is not accepted here")]
    WrongKind,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is for another event")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongKind => "wrong_kind",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Expired => "expired",
        }
    }
}

/// A key configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no signing key configured")]
    Empty,
    #[error("key entry `{0}` is not `kid:base64url-seed`")]
    Entry(String),
    #[error("key `{0}` is not a 32-byte Ed25519 seed in base64url")]
    Seed(String),
    #[error("the JWKS is not valid: {0}")]
    Jwks(String),
}

/// Claims every token carries and every check needs.
pub trait Claims {
    fn issuer(&self) -> &str;
    fn audience(&self) -> &str;
    /// Expiry in seconds since the epoch, if the token expires.
    fn expires_at(&self) -> Option<i64>;
}

/// A visitor's place in an event's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueClaims {
    pub iss: String,
    /// Visitor id.
    pub sub: String,
    /// Event id.
    pub aud: String,
    /// Ticket number: the order of arrival (within the pre-queue when `pre`).
    pub n: u64,
    /// Joined during the pre-queue, so shuffled at sale start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre: bool,
    pub iat: i64,
}

/// Entry to an event's checkout, for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// A proof-of-work puzzle: find a nonce whose hash with this token has
/// `bits` leading zero bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub jti: String,
    pub bits: u8,
}

macro_rules! claims {
    ($ty:ty, $exp:expr) => {
        impl Claims for $ty {
            fn issuer(&self) -> &str {
                &self.iss
            }
            fn audience(&self) -> &str {
                &self.aud
            }
            fn expires_at(&self) -> Option<i64> {
                let expiry: fn(&$ty) -> Option<i64> = $exp;
                expiry(self)
            }
        }
    };
}
claims!(QueueClaims, |_| None);
claims!(AccessClaims, |c| Some(c.exp));
claims!(ChallengeClaims, |c| Some(c.exp));

#[derive(Clone, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// The edge's keys: the first signs, all verify.
pub struct Keyring {
    verifier: Verifier,
}

impl Keyring {
    /// Parses `kid:seed[,kid:seed...]`, each seed 32 bytes in base64url. The
    /// first key signs; the others are kept for verification during a
    /// rotation.
    pub fn from_config(config: &str, issuer: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for entry in config.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, seed) = entry.split_once(':').ok_or_else(|| KeyError::Entry(entry.to_owned()))?;
            if kid.is_empty() {
                return Err(KeyError::Entry(entry.to_owned()));
            }
            let seed: [u8; 32] = B64
                .decode(seed)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| KeyError::Seed(kid.to_owned()))?;
            keys.push((kid.to_owned(), seed));
        }
        let mac_keys: Vec<_> = keys.iter().map(|(kid, seed)| (kid.clone(), keyed(&mac_key(seed)))).collect();
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let public = PublicKeys::Seeds { seeds: keys, expanded: OnceLock::new() };
        Ok(Self { verifier: Verifier::new(public, mac_keys, issuer) })
    }

    pub fn issuer(&self) -> &str {
        &self.verifier.issuer
    }

    pub fn sign<C: Serialize>(&self, kind: Kind, claims: &C) -> String {
        let (kid, signing_mac) = &self.verifier.mac_keys[0];
        let signing_input = format!("{}.{}", encode_json(&Header::of(kind, kid)), encode_json(claims));
        let signature = match kind {
            Kind::Access => B64.encode(self.signing_key().sign(signing_input.as_bytes()).to_bytes()),
            Kind::Queue | Kind::Challenge => {
                B64.encode(mac(signing_mac, signing_input.as_bytes()).finalize().into_bytes())
            }
        };
        format!("{signing_input}.{signature}")
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The first key's; a keyring's keys are seeds, never none.
    fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.verifier.keys.expanded()[0].1
    }

    /// The first key's MAC key.
    #[cfg(test)]
    fn signing_mac(&self) -> &HmacSha256 {
        &self.verifier.mac_keys[0].1
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys per RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .verifier
            .keys
            .public()
            .into_iter()
            .map(|(kid, key)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": B64.encode(key.as_bytes()),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn encode_json<T: Serialize>(value: &T) -> String {
    B64.encode(serde_json::to_vec(value).expect("token parts serialize"))
}

/// Checks tokens: access tokens against public keys, the edge-only kinds
/// against MAC keys, which only a [`Keyring`]'s verifier holds.
#[derive(Clone)]
pub struct Verifier {
    keys: PublicKeys,
    mac_keys: Vec<(String, HmacSha256)>,
    issuer: String,
    /// Every header a [`Keyring`] with these key ids writes, encoded as it
    /// writes them: a token starting with one needs no decoding to tell its
    /// kind and key (most of the work of refusing a token of another kind).
    known_headers: Vec<(String, Header)>,
}

impl Header {
    /// The header [`Keyring::sign`] writes.
    fn of(kind: Kind, kid: &str) -> Self {
        Header { alg: kind.alg().into(), typ: kind.typ().into(), kid: kid.to_owned() }
    }
}

/// The Ed25519 keys that sign and check access tokens, by id.
#[derive(Clone)]
enum PublicKeys {
    /// Public keys only (from a JWKS): the origin's.
    Given(Vec<(String, ed25519_dalek::VerifyingKey)>),
    /// Seeds, expanded on first use: expanding one is a scalar
    /// multiplication (~0.2 ms in Wasm), and the instance that only checks
    /// tickets and answers polls (on Spin, every request's) never needs it.
    Seeds { seeds: Vec<(String, [u8; 32])>, expanded: OnceLock<Vec<(String, ed25519_dalek::SigningKey)>> },
}

impl PublicKeys {
    fn kids(&self) -> Vec<&str> {
        match self {
            PublicKeys::Given(keys) => keys.iter().map(|(kid, _)| kid.as_str()).collect(),
            PublicKeys::Seeds { seeds, .. } => seeds.iter().map(|(kid, _)| kid.as_str()).collect(),
        }
    }

    /// The signing keys, expanded once; none for public keys only.
    fn expanded(&self) -> &[(String, ed25519_dalek::SigningKey)] {
        match self {
            PublicKeys::Seeds { seeds, expanded } => expanded.get_or_init(|| {
                let expand = |(kid, seed): &(String, [u8; 32])| {
                    (kid.clone(), ed25519_dalek::SigningKey::from_bytes(seed))
                };
                seeds.iter().map(expand).collect()
            }),
            PublicKeys::Given(_) => &[],
        }
    }

    fn public(&self) -> Vec<(&str, ed25519_dalek::VerifyingKey)> {
        match self {
            PublicKeys::Given(keys) => keys.iter().map(|(kid, key)| (kid.as_str(), *key)).collect(),
            PublicKeys::Seeds { .. } => {
                self.expanded().iter().map(|(kid, key)| (kid.as_str(), key.verifying_key())).collect()
            }
        }
    }

    fn find(&self, kid: &str) -> Option<ed25519_dalek::VerifyingKey> {
        match self {
            PublicKeys::Given(keys) => keys.iter().find(|(k, _)| k == kid).map(|(_, key)| *key),
            PublicKeys::Seeds { .. } => {
                self.expanded().iter().find(|(k, _)| k == kid).map(|(_, key)| key.verifying_key())
            }
        }
    }
}

/// Keys stay out of logs: only their ids are shown.
impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids = self.keys.kids();
        f.debug_struct("Verifier").field("kids", &kids).field("issuer", &self.issuer).finish()
    }
}

impl Verifier {
    /// Builds a verifier from a JWKS document; keys other than Ed25519 are
    /// skipped.
    pub fn from_jwks(jwks: &str, issuer: &str) -> Result<Self, KeyError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        #[derive(Deserialize)]
        struct Jwk {
            kty: String,
            crv: Option<String>,
            kid: Option<String>,
            x: Option<String>,
        }
        let jwks: Jwks = serde_json::from_str(jwks).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in jwks.keys {
            if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
                continue;
            }
            let kid = jwk.kid.ok_or_else(|| KeyError::Jwks("a key has no kid".into()))?;
            let key = jwk
                .x
                .and_then(|x| B64.decode(x).ok())
                .and_then(|x| <[u8; 32]>::try_from(x).ok())
                .and_then(|x| ed25519_dalek::VerifyingKey::from_bytes(&x).ok())
                .ok_or_else(|| KeyError::Jwks(format!("key `{kid}` is not a valid Ed25519 public key")))?;
            keys.push((kid, key));
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self::new(PublicKeys::Given(keys), Vec::new(), issuer))
    }

    fn new(keys: PublicKeys, mac_keys: Vec<(String, HmacSha256)>, issuer: &str) -> Self {
        let known_headers = Kind::ALL
            .iter()
            .flat_map(|&kind| keys.kids().into_iter().map(move |kid| Header::of(kind, kid)))
            .map(|header| (encode_json(&header), header))
            .collect();
        Self { keys, mac_keys, issuer: issuer.to_owned(), known_headers }
    }

    /// Verifies signature, kind, issuer, audience (the event) and expiry
    /// (`now` in seconds since the epoch).
    pub fn verify<C: Claims + DeserializeOwned>(
        &self,
        token: &str,
        kind: Kind,
        audience: &str,
        now: i64,
    ) -> Result<C, TokenError> {
        let claims: C = self.verify_signature(token, kind)?;
        if claims.issuer() != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.audience() != audience {
            return Err(TokenError::WrongAudience);
        }
        if claims.expires_at().is_some_and(|exp| exp <= now) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    fn verify_signature<C: DeserializeOwned>(&self, token: &str, kind: Kind) -> Result<C, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = match self.known_headers.iter().find(|(encoded, _)| encoded == header) {
            Some((_, known)) => std::borrow::Cow::Borrowed(known),
            None => std::borrow::Cow::Owned(decode_json::<Header>(header)?),
        };
        // Another kind (or none) is refused before any signature work: the
        // kinds are no secret, and a poll presents its queue ticket where an
        // access token could also be.
        if header.typ != kind.typ() {
            return Err(if Kind::ALL.iter().any(|k| k.typ() == header.typ) {
                TokenError::WrongKind
            } else {
                TokenError::Malformed
            });
        }
        // The kind decides the algorithm; the header only has to agree.
        if header.alg != kind.alg() {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token.as_bytes()[..header_and_payload_len(token)];
        match kind {
            Kind::Access => {
                let key = self.keys.find(&header.kid).ok_or(TokenError::UnknownKey)?;
                let signature: [u8; 64] = signature.try_into().map_err(|_| TokenError::Malformed)?;
                key.verify(signing_input, &ed25519_dalek::Signature::from_bytes(&signature))
                    .map_err(|_| TokenError::BadSignature)?;
            }
            Kind::Queue | Kind::Challenge => {
                let (_, key) =
                    self.mac_keys.iter().find(|(kid, _)| *kid == header.kid).ok_or(TokenError::UnknownKey)?;
                // Compared in constant time by the `hmac` crate.
                mac(key, signing_input).verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
            }
        }
        decode_json(payload)
    }
}

/// The claims of `token` **without verifying anything**: only to choose
/// what to verify against (the event a token names) or to look up a
/// revocation before verifying. Never grant anything on these claims.
pub fn unverified_claims<C: DeserializeOwned>(token: &str) -> Option<C> {
    decode_json(token.split('.').nth(1)?).ok()
}

/// The event (`aud`) `token` names, **unverified**: only to choose which
/// event to verify it against.
pub fn unverified_audience(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Audience {
        aud: String,
    }
    unverified_claims::<Audience>(token).map(|claims| claims.aud)
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').expect("three parts were checked")
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "0b7c6c1e-5f2a-4c55-9d1e-2f1f3c1d9a01";
    const KEY_A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const KEY_B: &str = "b:HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE";

    fn access(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "edge".into(),
            sub: "visitor".into(),
            aud: EVENT.into(),
            iat: 1_000,
            exp,
            jti: "j1".into(),
        }
    }

    fn keyring(config: &str) -> Keyring {
        Keyring::from_config(config, "edge").unwrap()
    }

    #[test]
    fn access_token_round_trips_through_the_published_jwks() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Access, &access(2_000));
        let origin = Verifier::from_jwks(&ring.jwks().to_string(), "edge").unwrap();
        let claims: AccessClaims = origin.verify(&token, Kind::Access, EVENT, 1_500).unwrap();
        assert_eq!(claims, access(2_000));
    }

    #[test]
    fn a_tokens_event_is_read_before_verifying_only_from_a_well_formed_token() {
        let token = keyring(KEY_A).sign(Kind::Access, &access(2_000));
        assert_eq!(unverified_audience(&token).as_deref(), Some(EVENT));
        assert_eq!(unverified_audience("not.a-token"), None);
        assert_eq!(unverified_audience("no-dots"), None);
    }

    #[test]
    fn header_is_standard_jose() {
        let token = keyring(KEY_A).sign(Kind::Access, &access(2_000));
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a"}));
    }

    #[test]
    fn refuses_expired_wrong_event_and_wrong_issuer() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Access, &access(2_000));
        let v = ring.verifier();
        assert_eq!(v.verify::<AccessClaims>(&token, Kind::Access, EVENT, 2_000), Err(TokenError::Expired));
        assert_eq!(
            v.verify::<AccessClaims>(&token, Kind::Access, "other", 1_500),
            Err(TokenError::WrongAudience)
        );
        let elsewhere = Keyring::from_config(KEY_A, "someone-else").unwrap();
        assert_eq!(
            elsewhere.verifier().verify::<AccessClaims>(&token, Kind::Access, EVENT, 1_500),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn a_queue_ticket_is_not_an_access_token() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Queue, &ticket(7));
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&token, Kind::Access, EVENT, 2),
            Err(TokenError::WrongKind)
        );
        assert_eq!(ring.verifier().verify::<QueueClaims>(&token, Kind::Queue, EVENT, 2), Ok(ticket(7)));
    }

    #[test]
    fn tampering_anywhere_breaks_the_signature() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Access, &access(2_000));
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut richer = access(2_000);
        richer.exp = 9_999_999_999;
        let forged = format!("{head}.{}.{signature}", encode_json(&richer));
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&forged, Kind::Access, EVENT, 1),
            Err(TokenError::BadSignature)
        );
        // Flip one bit in the signature.
        let mut bytes = B64.decode(signature).unwrap();
        bytes[0] ^= 1;
        let flipped = format!("{head}.{}.{}", rest.split_once('.').unwrap().0, B64.encode(bytes));
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&flipped, Kind::Access, EVENT, 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_from_another_key_or_algorithm_is_refused() {
        let token = keyring(KEY_B).sign(Kind::Access, &access(2_000));
        assert_eq!(
            keyring(KEY_A).verifier().verify::<AccessClaims>(&token, Kind::Access, EVENT, 1),
            Err(TokenError::UnknownKey)
        );
        let none = format!(
            "{}.{}.",
            encode_json(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": "a"})),
            encode_json(&access(2_000))
        );
        assert_eq!(
            keyring(KEY_A).verifier().verify::<AccessClaims>(&none, Kind::Access, EVENT, 1),
            Err(TokenError::UnsupportedAlgorithm)
        );
        for junk in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert_eq!(
                keyring(KEY_A).verifier().verify::<AccessClaims>(junk, Kind::Access, EVENT, 1),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn rotation_keeps_tokens_signed_with_the_previous_key_valid() {
        let old = keyring(KEY_A).sign(Kind::Access, &access(2_000));
        let rotated = keyring(&format!("{KEY_B},{KEY_A}"));
        let new = rotated.sign(Kind::Access, &access(2_000));
        for token in [&old, &new] {
            assert!(rotated.verifier().verify::<AccessClaims>(token, Kind::Access, EVENT, 1).is_ok());
        }
        assert!(new.starts_with(&encode_json(&Header {
            alg: "EdDSA".into(),
            typ: "at+jwt".into(),
            kid: "b".into()
        })));
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    fn ticket(n: u64) -> QueueClaims {
        QueueClaims { iss: "edge".into(), sub: "v".into(), aud: EVENT.into(), n, pre: false, iat: 1 }
    }

    #[test]
    fn edge_only_tokens_are_maced_and_only_the_edge_can_check_them() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Queue, &ticket(7));
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "queue+jwt", "kid": "a"}));
        assert_eq!(ring.verifier().verify::<QueueClaims>(&token, Kind::Queue, EVENT, 2), Ok(ticket(7)));
        // The origin knows the public keys only: it cannot check (or mint) tickets.
        let origin = Verifier::from_jwks(&ring.jwks().to_string(), "edge").unwrap();
        assert_eq!(origin.verify::<QueueClaims>(&token, Kind::Queue, EVENT, 2), Err(TokenError::UnknownKey));
        assert_eq!(origin.verify::<AccessClaims>(&token, Kind::Access, EVENT, 2), Err(TokenError::WrongKind));
        assert!(!format!("{:?}", ring.verifier()).contains("mac"), "no key material in Debug");
    }

    #[test]
    fn a_ticket_cannot_be_forged_altered_or_given_another_algorithm() {
        let ring = keyring(KEY_A);
        let token = ring.sign(Kind::Queue, &ticket(7));
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let earlier = format!("{head}.{}.{signature}", encode_json(&ticket(1)));
        let check = |token: &str| ring.verifier().verify::<QueueClaims>(token, Kind::Queue, EVENT, 2);
        assert_eq!(check(&earlier), Err(TokenError::BadSignature), "a better place is not for the taking");
        // Same key id, another seed: another MAC key.
        let other = Keyring::from_config("a:HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE", "edge").unwrap();
        assert_eq!(check(&other.sign(Kind::Queue, &ticket(1))), Err(TokenError::BadSignature));
        // The header cannot choose the algorithm: an EdDSA-signed ticket is refused.
        let eddsa_header =
            encode_json(&Header { alg: "EdDSA".into(), typ: "queue+jwt".into(), kid: "a".into() });
        let input = format!("{eddsa_header}.{}", encode_json(&ticket(1)));
        let signed = format!("{input}.{}", B64.encode(ring.signing_key().sign(input.as_bytes()).to_bytes()));
        assert_eq!(check(&signed), Err(TokenError::UnsupportedAlgorithm));
        // Nor can an access token be MACed with the ticket key.
        let hs_header = encode_json(&Header { alg: "HS256".into(), typ: "at+jwt".into(), kid: "a".into() });
        let input = format!("{hs_header}.{}", encode_json(&access(2_000)));
        let maced = format!(
            "{input}.{}",
            B64.encode(mac(ring.signing_mac(), input.as_bytes()).finalize().into_bytes())
        );
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&maced, Kind::Access, EVENT, 1),
            Err(TokenError::UnsupportedAlgorithm)
        );
        let unknown = format!(
            "{}.{}.x",
            encode_json(&serde_json::json!({"alg": "HS256", "typ": "jwt", "kid": "a"})),
            encode_json(&ticket(1))
        );
        assert_eq!(check(&unknown), Err(TokenError::Malformed));
    }

    /// Tickets and puzzles never need the Ed25519 keys: a poll does not pay
    /// for expanding them.
    #[test]
    fn the_public_keys_are_expanded_only_for_access_tokens() {
        let ring = keyring(KEY_A);
        let expanded = |ring: &Keyring| match &ring.verifier.keys {
            PublicKeys::Seeds { expanded, .. } => expanded.get().is_some(),
            PublicKeys::Given(_) => panic!("a keyring holds seeds"),
        };
        let token = ring.sign(Kind::Queue, &ticket(2));
        assert_eq!(ring.verifier().verify::<QueueClaims>(&token, Kind::Queue, EVENT, 2), Ok(ticket(2)));
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&token, Kind::Access, EVENT, 2),
            Err(TokenError::WrongKind)
        );
        assert!(!expanded(&ring));
        let access_token = ring.sign(Kind::Access, &access(2_000));
        assert!(expanded(&ring));
        assert_eq!(
            ring.verifier().verify::<AccessClaims>(&access_token, Kind::Access, EVENT, 1),
            Ok(access(2_000))
        );
    }

    /// The headers a keyring writes are recognised without decoding; any
    /// other spelling of the same header is decoded and judged alike.
    #[test]
    fn a_header_is_judged_the_same_in_any_spelling() {
        let ring = keyring(KEY_A);
        let claims = encode_json(&ticket(5));
        let written = encode_json(&Header::of(Kind::Queue, "a"));
        let respelled = encode_json(&serde_json::json!({"kid": "a", "typ": "queue+jwt", "alg": "HS256"}));
        assert_ne!(written, respelled);
        for header in [written, respelled] {
            let input = format!("{header}.{claims}");
            let tag = mac(ring.signing_mac(), input.as_bytes()).finalize().into_bytes();
            let token = format!("{input}.{}", B64.encode(tag));
            let verifier = ring.verifier();
            assert_eq!(verifier.verify::<QueueClaims>(&token, Kind::Queue, EVENT, 2), Ok(ticket(5)));
            assert_eq!(
                verifier.verify::<AccessClaims>(&token, Kind::Access, EVENT, 2),
                Err(TokenError::WrongKind)
            );
            let forged = format!("{input}.{}", B64.encode([0u8; 32]));
            assert_eq!(
                verifier.verify::<QueueClaims>(&forged, Kind::Queue, EVENT, 2),
                Err(TokenError::BadSignature)
            );
        }
    }

    #[test]
    fn rotation_keeps_tickets_of_the_previous_key_valid() {
        let old = keyring(KEY_A).sign(Kind::Queue, &ticket(3));
        let rotated = keyring(&format!("{KEY_B},{KEY_A}"));
        assert_eq!(rotated.verifier().verify::<QueueClaims>(&old, Kind::Queue, EVENT, 2), Ok(ticket(3)));
        let new = rotated.sign(Kind::Queue, &ticket(4));
        assert_eq!(
            keyring(KEY_A).verifier().verify::<QueueClaims>(&new, Kind::Queue, EVENT, 2),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn bad_key_configuration_is_explained() {
        assert!(matches!(Keyring::from_config("", "i"), Err(KeyError::Empty)));
        assert!(matches!(Keyring::from_config("nocolon", "i"), Err(KeyError::Entry(_))));
        assert!(matches!(Keyring::from_config("k:short", "i"), Err(KeyError::Seed(k)) if k == "k"));
        assert!(matches!(Verifier::from_jwks("{\"keys\": []}", "i"), Err(KeyError::Empty)));
        assert!(matches!(Verifier::from_jwks("nope", "i"), Err(KeyError::Jwks(_))));
    }
}
