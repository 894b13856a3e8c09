//! Tells the edge what changed, through the Redis its caches and waiting
//! room live in (Upstash REST). An organizer's change bumps the catalog
//! version, so every cached page is refreshed on its next request, and
//! publishes the event's waiting-room settings; [`run_settings_publisher`]
//! publishes what changes without an organizer (a sale selling out, a
//! change made in the database). The edge therefore never asks the origin
//! for settings while visitors poll, and never writes them itself. Best
//! effort by design: if Redis is unreachable, edge pages still expire
//! within their freshness window and the publisher tries again.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use wire::names::{CATALOG_VERSION_KEY, room_settings_key};
use wire::room::RoomSettings;

use crate::catalog::{live_waiting_rooms, waiting_room};

#[derive(Clone)]
pub struct CatalogPurge {
    /// Upstash REST URL and token; `None` when the origin runs without an edge cache.
    target: Option<(String, SecretString)>,
    client: reqwest::Client,
}

impl CatalogPurge {
    pub fn new(target: Option<(String, SecretString)>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("HTTP client");
        Self { target, client }
    }

    /// After an organizer's change to `event`: pages refresh, and the
    /// waiting room's settings are the new ones (gone if the event is no
    /// longer public).
    pub async fn event_changed(&self, db: &PgPool, event: Uuid) {
        if self.target.is_none() {
            return;
        }
        let settings = match waiting_room(db, event).await {
            Ok(Some(room)) => publish(&room),
            Ok(None) => unpublish(&event.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, %event, "cannot read waiting-room settings; the edge forgets them");
                unpublish(&event.to_string())
            }
        };
        let commands = json!([["INCR", CATALOG_VERSION_KEY], settings]);
        if let Err(e) = self.send(&commands).await {
            tracing::warn!(error = %e, %event, "catalog purge failed; edge pages refresh within their TTL");
        }
    }

    async fn send(&self, commands: &Value) -> Result<(), reqwest::Error> {
        let Some((url, token)) = &self.target else { return Ok(()) };
        self.client
            .post(format!("{}/pipeline", url.trim_end_matches('/')))
            .bearer_auth(token.expose_secret())
            .json(commands)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map(drop)
    }
}

fn publish(room: &RoomSettings) -> Value {
    json!([
        "SET",
        room_settings_key(&room.event_id),
        serde_json::to_string(room).expect("settings serialize")
    ])
}

fn unpublish(event: &str) -> Value {
    json!(["DEL", room_settings_key(event)])
}

/// What this origin last published, so unchanged settings cost nothing.
#[derive(Default)]
pub struct SettingsPublisher {
    published: HashMap<String, String>,
}

impl SettingsPublisher {
    /// Publishes every live waiting room whose settings changed since the
    /// last step, and withdraws those no longer live. Returns how many
    /// commands it sent.
    pub async fn step(&mut self, db: &PgPool, purge: &CatalogPurge) -> Result<usize, sqlx::Error> {
        if purge.target.is_none() {
            return Ok(0);
        }
        let rooms = live_waiting_rooms(db).await?;
        let mut commands = Vec::new();
        let mut now_published = HashMap::with_capacity(rooms.len());
        for room in &rooms {
            let json = serde_json::to_string(room).expect("settings serialize");
            if self.published.get(&room.event_id) != Some(&json) {
                commands.push(publish(room));
            }
            now_published.insert(room.event_id.clone(), json);
        }
        for gone in self.published.keys().filter(|id| !now_published.contains_key(*id)) {
            commands.push(unpublish(gone));
        }
        let sent = commands.len();
        if sent == 0 {
            return Ok(0);
        }
        match purge.send(&Value::Array(commands)).await {
            // Remembered only once sent: a failed step is retried whole.
            Ok(()) => self.published = now_published,
            Err(e) => tracing::warn!(error = %e, "cannot publish waiting-room settings; retrying"),
        }
        Ok(sent)
    }
}

/// Publishes changed waiting-room settings every `interval`.
pub async fn run_settings_publisher(
    db: PgPool,
    purge: CatalogPurge,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    // Steps run one at a time; the lock only lends the memory to each.
    let publisher = std::sync::Arc::new(tokio::sync::Mutex::new(SettingsPublisher::default()));
    crate::workers::every(interval, stop, || {
        let (publisher, db, purge) = (publisher.clone(), db.clone(), purge.clone());
        async move {
            if let Err(e) = publisher.lock().await.step(&db, &purge).await {
                tracing::warn!(error = %e, "cannot read waiting-room settings to publish");
            }
        }
    })
    .await;
}
