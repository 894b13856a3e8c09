//! Organizer API keys: random, shown once, stored as SHA-256.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// A new API key: `sk_` and 32 random bytes in hex.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sk_{}", hex::encode(bytes))
}

pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates an organizer with the given key; returns its id.
pub async fn create_organizer(db: &PgPool, name: &str, api_key: &str) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO organizers (id, name, api_key_hash) VALUES ($1, $2, $3)",
        id,
        name,
        hash_api_key(api_key)
    )
    .execute(db)
    .await?;
    Ok(id)
}

pub async fn organizer_by_key(db: &PgPool, api_key: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM organizers WHERE api_key_hash = $1", hash_api_key(api_key))
        .fetch_optional(db)
        .await
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 67);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
