//! `cargo xtask keys`: the waiting room's Ed25519 signing keys for a
//! deployment, and the public JWKS the origin verifies access tokens with.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use queue_tokens::Keyring;

use crate::services::EDGE_ISSUER;

/// A fresh key in `QUEUE_SIGNING_KEYS` form: `kid:base64url-seed`.
pub fn draw(kid: &str) -> anyhow::Result<String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(format!("{kid}:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed)))
}

/// The JWKS holding the public halves of `keys` (a `QUEUE_SIGNING_KEYS` value).
pub fn jwks(keys: &str) -> anyhow::Result<String> {
    let keyring = Keyring::from_config(keys, EDGE_ISSUER).context("not a valid QUEUE_SIGNING_KEYS value")?;
    Ok(keyring.jwks().to_string())
}

/// Prints a new key and its JWKS, or with `--rotate CURRENT` the three
/// deploys that replace the keys in CURRENT without refusing any token.
pub fn print(args: &[String]) -> anyhow::Result<()> {
    let new = draw(&new_kid()?)?;
    match args {
        [] => {
            println!("# A new waiting-room signing key: a secret, for the edge only.");
            println!("QUEUE_SIGNING_KEYS={new}");
            println!();
            println!("# Its public half, for the origin (not a secret).");
            println!("STAMPEDE_ACCESS_JWKS={}", jwks(&new)?);
            println!();
            println!("# Edge on Spin:        spin deploy --variable queue_signing_keys='…'");
            println!("# Edge on Cloudflare:  wrangler secret put QUEUE_SIGNING_KEYS   (paste the value)");
            println!("# Origin:              STAMPEDE_ACCESS_JWKS in its environment file");
        }
        [flag, current] if flag == "--rotate" => {
            let current = current.trim();
            jwks(current)?;
            let both = format!("{current},{new}");
            let swapped = format!("{new},{current}");
            println!("# Rotating the waiting room's signing key: three deploys.");
            println!("#");
            println!("# 1. Add the new key second (it verifies, the current one still signs).");
            println!("#    Deploy the origin first, then the edge.");
            println!("QUEUE_SIGNING_KEYS={both}");
            println!("STAMPEDE_ACCESS_JWKS={}", jwks(&both)?);
            println!("#");
            println!("# 2. Swap the order: the new key signs, the old one still verifies what");
            println!("#    it signed. Deploy the edge (the origin keeps the JWKS of step 1).");
            println!("QUEUE_SIGNING_KEYS={swapped}");
            println!("#");
            println!("# 3. Once every sale that was open at step 2 has ended (queue tickets do");
            println!("#    not expire; access tokens last minutes), drop the old key.");
            println!("#    Deploy the edge, then the origin.");
            println!("QUEUE_SIGNING_KEYS={new}");
            println!("STAMPEDE_ACCESS_JWKS={}", jwks(&new)?);
        }
        _ => bail!("usage: cargo xtask keys [--rotate CURRENT_QUEUE_SIGNING_KEYS]"),
    }
    Ok(())
}

/// Key ids name the day they were drawn, plus a random tag so two drawn
/// the same day differ.
fn new_kid() -> anyhow::Result<String> {
    let today = crate::setup::output(std::process::Command::new("date").args(["-u", "+%Y%m%d"]))?;
    let mut tag = [0u8; 3];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut tag)?;
    Ok(format!("k{}-{}", today.trim(), tag.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use queue_tokens::{AccessClaims, Kind, Verifier};

    use super::*;

    fn token(keys: &str) -> String {
        let claims = AccessClaims {
            iss: EDGE_ISSUER.into(),
            sub: "visitor".into(),
            aud: "event".into(),
            iat: 0,
            exp: i64::MAX,
            jti: "session".into(),
        };
        Keyring::from_config(keys, EDGE_ISSUER).unwrap().sign(Kind::Access, &claims)
    }

    fn verifies(jwks: &str, token: &str) -> bool {
        let verifier = Verifier::from_jwks(jwks, EDGE_ISSUER).unwrap();
        verifier.verify::<AccessClaims>(token, Kind::Access, "event", 1).is_ok()
    }

    #[test]
    fn the_printed_jwks_verifies_what_the_drawn_key_signs_and_nothing_else() {
        let (old, new) = (draw("old").unwrap(), draw("new").unwrap());
        assert_ne!(old, new);
        assert!(verifies(&jwks(&new).unwrap(), &token(&new)));
        assert!(!verifies(&jwks(&new).unwrap(), &token(&old)));
        // Mid-rotation the origin accepts tokens from either key, whichever signs.
        let both = jwks(&format!("{old},{new}")).unwrap();
        assert!(verifies(&both, &token(&format!("{old},{new}"))));
        assert!(verifies(&both, &token(&format!("{new},{old}"))));
        assert!(jwks("no-seed").is_err());
    }
}
