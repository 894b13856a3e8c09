use origin_inventory::auth::{create_organizer, generate_api_key};
use origin_inventory::payments::SandboxFaults;
use origin_inventory::test_support::{OriginOptions, TestOrigin, spawn_origin_with_options};
pub use origin_inventory::test_support::{TEST_TICKET_SECRET, TEST_WEBHOOK_SECRET};
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use sqlx::PgPool;

/// Where the tests' buyers reach the site, as emails link to it.
pub const TEST_PUBLIC_URL: &str = "https://tickets.test";

pub struct TestApp {
    pub base: String,
    pub db: PgPool,
    pub client: reqwest::Client,
    pub key: String,
    pub database_url: String,
    /// The sandbox payment provider's ledger, in a database of its own.
    pub ledger: PgPool,
    pub ledger_url: String,
    /// Each named test buyer's session token, issued by the origin on first use.
    sessions: Mutex<HashMap<String, String>>,
}

/// A fresh origin with one organizer whose key is `key`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_faults(SandboxFaults::default()).await
}

pub async fn spawn_app_with_faults(faults: SandboxFaults) -> TestApp {
    spawn_app_with(OriginOptions { faults, ..OriginOptions::default() }).await
}

pub async fn spawn_app_with(options: OriginOptions) -> TestApp {
    let TestOrigin { base, db, database_url, ledger, ledger_url } = spawn_origin_with_options(options).await;
    let key = generate_api_key();
    create_organizer(&db, "Test Organizer", &key).await.unwrap();
    TestApp {
        base,
        db,
        client: reqwest::Client::new(),
        key,
        database_url,
        ledger,
        ledger_url,
        sessions: Mutex::default(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        read(response).await
    }

    /// A request as the organizer whose key is `key`.
    pub async fn organizer(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    /// The session token of the test buyer called `buyer` (the origin names
    /// buyers; tests only name their sessions).
    pub async fn session(&self, buyer: &str) -> String {
        if let Some(token) = self.sessions.lock().unwrap().get(buyer) {
            return token.clone();
        }
        let (status, session) =
            read(self.client.post(self.url("/api/v1/buyer-sessions")).send().await.unwrap()).await;
        assert_eq!(status, 201, "{session}");
        let token = session["buyer_token"].as_str().unwrap().to_owned();
        self.sessions.lock().unwrap().entry(buyer.to_owned()).or_insert(token).clone()
    }

    /// The buyer id the origin gave the test buyer `buyer`.
    pub async fn buyer_id(&self, buyer: &str) -> String {
        self.session(buyer).await.split('.').nth(1).unwrap().to_owned()
    }

    /// A request as buyer `buyer`.
    pub async fn buyer(
        &self,
        buyer: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(self.session(buyer).await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn hold(&self, buyer: &str, event: &str, body: Value) -> (u16, Value) {
        self.buyer(buyer, reqwest::Method::POST, &format!("/api/v1/events/{event}/reservations"), Some(body))
            .await
    }

    pub async fn commit(&self, buyer: &str, reservation: &Value, key: &str, body: Value) -> (u16, Value) {
        let path = format!("/api/v1/reservations/{}/commit", reservation["reservation_id"].as_str().unwrap());
        let request = self
            .client
            .post(self.url(&path))
            .bearer_auth(self.session(buyer).await)
            .header("idempotency-key", key);
        read(request.json(&body).send().await.unwrap()).await
    }

    /// Moves a reservation's expiry into the past, as if its TTL had run out.
    pub async fn expire(&self, reservation: &Value) {
        let id: uuid::Uuid = reservation["reservation_id"].as_str().unwrap().parse().unwrap();
        sqlx::query("UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1")
            .bind(id)
            .execute(&self.db)
            .await
            .unwrap();
        sqlx::query("UPDATE inventory SET held_until = now() - interval '1 second' WHERE hold_id = $1")
            .bind(id)
            .execute(&self.db)
            .await
            .unwrap();
    }

    /// The id of one section of `event`'s venue.
    pub async fn a_section_of(&self, event: &str) -> String {
        sqlx::query_scalar("SELECT section_id::text FROM inventory WHERE event_id = $1::uuid LIMIT 1")
            .bind(event)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.organizer(&self.key, reqwest::Method::POST, path, Some(body)).await
    }

    /// A second organizer with its own key.
    pub async fn other_organizer(&self) -> String {
        let key = generate_api_key();
        create_organizer(&self.db, "Someone Else", &key).await.unwrap();
        key
    }

    /// A small venue: 2 rows × 5 seats (tier A) and 10 GA places (tier B).
    pub async fn small_venue(&self) -> Value {
        let (status, venue) = self.post("/api/v1/organizer/venues", small_venue_spec()).await;
        assert_eq!(status, 201, "{venue}");
        venue
    }

    /// A published event at a new small venue.
    pub async fn on_sale_event(&self, extra: Value) -> Value {
        let venue = self.small_venue().await;
        let mut body = json!({
            "venue_id": venue["id"], "title": "Test Show", "category": "music",
            "starts_at": "2030-06-01T19:00:00Z", "sale_starts_at": "2020-01-01T00:00:00Z",
        });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, event) = self.post("/api/v1/organizer/events", body).await;
        assert_eq!(status, 201, "{event}");
        let (status, event) = self
            .post(&format!("/api/v1/organizer/events/{}/publish", event["id"].as_str().unwrap()), json!({}))
            .await;
        assert_eq!(status, 200, "{event}");
        event
    }
}

pub fn small_venue_spec() -> Value {
    json!({
        "name": "Club", "city": "Berlin", "timezone": "Europe/Berlin",
        "tiers": [{"name": "A", "price_cents": 5000, "currency": "EUR"},
                  {"name": "B", "price_cents": 2500, "currency": "EUR"}],
        "sections": [
            {"name": "Seated", "tier": "A", "rows": [{"label": "1", "seats": 5}, {"label": "2", "seats": 5}]},
            {"name": "Standing", "tier": "B", "capacity": 10}
        ]
    })
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
