//! Events: what organizers set up and the rules those settings obey.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// An event's lifecycle: `draft → on_sale → sold_out / closed / cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum EventStatus {
    Draft,
    OnSale,
    SoldOut,
    Closed,
    Cancelled,
}

/// What an organizer can do to an event's status.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    Publish,
    Close,
    Cancel,
}

impl StatusAction {
    fn verb(self) -> &'static str {
        match self {
            StatusAction::Publish => "publish",
            StatusAction::Close => "close",
            StatusAction::Cancel => "cancel",
        }
    }
}

impl EventStatus {
    /// The status in words, for messages.
    /// As the API and the waiting room's settings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Draft => "draft",
            EventStatus::OnSale => "on_sale",
            EventStatus::SoldOut => "sold_out",
            EventStatus::Closed => "closed",
            EventStatus::Cancelled => "cancelled",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            EventStatus::Draft => "a draft",
            EventStatus::OnSale => "already on sale",
            EventStatus::SoldOut => "sold out",
            EventStatus::Closed => "closed",
            EventStatus::Cancelled => "cancelled",
        }
    }

    pub fn apply(self, action: StatusAction) -> Result<Self, String> {
        use EventStatus::*;
        match (action, self) {
            (StatusAction::Publish, Draft) => Ok(OnSale),
            (StatusAction::Close, OnSale | SoldOut) => Ok(Closed),
            (StatusAction::Cancel, Draft | OnSale | SoldOut | Closed) => Ok(Cancelled),
            (action, status) => {
                Err(format!("cannot {} an event that is {}", action.verb(), status.describe()))
            }
        }
    }
}

/// The waiting room's settings for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    #[serde(rename = "enabled")]
    pub queue_enabled: bool,
    pub new_users_per_minute: i32,
    pub total_active_users: i32,
    pub session_duration_seconds: i32,
    pub prequeue_starts_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "paused")]
    pub queue_paused: bool,
    /// Leading zero bits of the proof of work a join needs (0 = none, at most 24).
    #[serde(default)]
    pub pow_difficulty: i16,
    /// Text shown in the waiting room.
    #[serde(default)]
    pub message: String,
    /// Accent colour of the waiting room, `#rrggbb`.
    #[serde(default = "default_accent_color")]
    pub accent_color: String,
}

fn default_accent_color() -> String {
    "#4338ca".into()
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            queue_enabled: false,
            new_users_per_minute: 600,
            total_active_users: 1000,
            session_duration_seconds: 900,
            prequeue_starts_at: None,
            queue_paused: false,
            pow_difficulty: 0,
            message: String::new(),
            accent_color: default_accent_color(),
        }
    }
}

/// A change to the waiting room: the fields sent replace the current
/// values, the others stay as they are (`PUT` and `PATCH …/queue` alike, and
/// a new event's `queue` over the defaults). `prequeue_starts_at: null`
/// removes the pre-queue.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueuePatch {
    /// Send buyers through the waiting room (default false).
    pub enabled: Option<bool>,
    /// Admissions per minute (default 600).
    #[schema(minimum = 1)]
    pub new_users_per_minute: Option<i32>,
    /// Buyers in checkout at once (default 1000).
    #[schema(minimum = 1)]
    pub total_active_users: Option<i32>,
    /// How long an admission lasts (default 900).
    #[schema(minimum = 60, maximum = 7200)]
    pub session_duration_seconds: Option<i32>,
    /// When the pre-queue opens (before `sale_starts_at`; its visitors are
    /// shuffled at the start); `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub prequeue_starts_at: Option<Option<DateTime<Utc>>>,
    /// Admit nobody new while true (default false).
    pub paused: Option<bool>,
    /// Leading zero bits of the proof of work a join needs (default 0).
    #[schema(minimum = 0, maximum = 24)]
    pub pow_difficulty: Option<i16>,
    /// Text shown in the waiting room (at most 2000 characters).
    pub message: Option<String>,
    /// Accent colour of the waiting room, `#rrggbb` (default `#4338ca`).
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent_color: Option<String>,
}

/// A field that is present, even as `null` (absent fields take the default, `None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl QueuePatch {
    pub fn apply(self, q: QueueSettings) -> QueueSettings {
        QueueSettings {
            queue_enabled: self.enabled.unwrap_or(q.queue_enabled),
            new_users_per_minute: self.new_users_per_minute.unwrap_or(q.new_users_per_minute),
            total_active_users: self.total_active_users.unwrap_or(q.total_active_users),
            session_duration_seconds: self.session_duration_seconds.unwrap_or(q.session_duration_seconds),
            prequeue_starts_at: self.prequeue_starts_at.unwrap_or(q.prequeue_starts_at),
            queue_paused: self.paused.unwrap_or(q.queue_paused),
            pow_difficulty: self.pow_difficulty.unwrap_or(q.pow_difficulty),
            message: self.message.unwrap_or(q.message),
            accent_color: self.accent_color.unwrap_or(q.accent_color),
        }
    }
}

/// Everything an organizer sets on an event, validated as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventSettings {
    pub title: String,
    pub description: String,
    pub category: String,
    pub starts_at: DateTime<Utc>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub hold_ttl_seconds: i32,
    pub max_tickets_per_order: i32,
    pub max_tickets_per_buyer: i32,
    pub queue: QueueSettings,
}

impl EventSettings {
    pub fn validate(&self) -> Result<(), String> {
        let text = |what: &str, value: &str, max: usize| {
            if value.trim().is_empty() || value.chars().count() > max {
                Err(format!("{what} must be 1 to {max} characters"))
            } else {
                Ok(())
            }
        };
        text("title", &self.title, 300)?;
        text("category", &self.category, 50)?;
        if self.description.chars().count() > 20_000 {
            return Err("description must be at most 20000 characters".into());
        }
        if !(60..=900).contains(&self.hold_ttl_seconds) {
            return Err("hold_ttl_seconds must be between 60 and 900".into());
        }
        if !(1..=50).contains(&self.max_tickets_per_order) {
            return Err("max_tickets_per_order must be between 1 and 50".into());
        }
        if self.max_tickets_per_buyer < self.max_tickets_per_order || self.max_tickets_per_buyer > 200 {
            return Err("max_tickets_per_buyer must be at least max_tickets_per_order and at most 200".into());
        }
        if let (Some(start), Some(end)) = (self.sale_starts_at, self.sale_ends_at)
            && end <= start
        {
            return Err("sale_ends_at must be after sale_starts_at".into());
        }
        let q = &self.queue;
        if q.new_users_per_minute <= 0 || q.total_active_users <= 0 {
            return Err("queue rates must be positive".into());
        }
        if !(60..=7200).contains(&q.session_duration_seconds) {
            return Err("session_duration_seconds must be between 60 and 7200".into());
        }
        if !(0..=24).contains(&q.pow_difficulty) {
            return Err("pow_difficulty must be between 0 and 24".into());
        }
        if q.message.chars().count() > 2000 {
            return Err("message must be at most 2000 characters".into());
        }
        let hex_color = q.accent_color.len() == 7
            && q.accent_color.starts_with('#')
            && q.accent_color[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_color {
            return Err("accent_color must look like #4338ca".into());
        }
        if let Some(prequeue) = q.prequeue_starts_at {
            match self.sale_starts_at {
                Some(sale) if prequeue <= sale => {}
                _ => return Err("prequeue_starts_at needs a later sale_starts_at".into()),
            }
        }
        Ok(())
    }
}

/// `POST /api/v1/organizer/events`: settings plus the venue; defaults as documented.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub venue_id: Uuid,
    /// 1 to 300 characters.
    pub title: String,
    /// At most 20000 characters.
    #[serde(default)]
    pub description: String,
    /// 1 to 50 characters.
    pub category: String,
    pub starts_at: DateTime<Utc>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    /// After `sale_starts_at`.
    pub sale_ends_at: Option<DateTime<Utc>>,
    /// How long a hold lasts (default 600).
    #[schema(minimum = 60, maximum = 900)]
    pub hold_ttl_seconds: Option<i32>,
    /// Seats per hold (default 4).
    #[schema(minimum = 1, maximum = 50)]
    pub max_tickets_per_order: Option<i32>,
    /// Seats per buyer over the whole sale (default 8, at least the per-order limit).
    #[schema(maximum = 200)]
    pub max_tickets_per_buyer: Option<i32>,
    /// The waiting room: the fields sent change the defaults.
    pub queue: Option<QueuePatch>,
}

impl NewEvent {
    pub fn settings(self) -> EventSettings {
        EventSettings {
            title: self.title,
            description: self.description,
            category: self.category,
            starts_at: self.starts_at,
            sale_starts_at: self.sale_starts_at,
            sale_ends_at: self.sale_ends_at,
            hold_ttl_seconds: self.hold_ttl_seconds.unwrap_or(600),
            max_tickets_per_order: self.max_tickets_per_order.unwrap_or(4),
            max_tickets_per_buyer: self.max_tickets_per_buyer.unwrap_or(8),
            queue: self.queue.unwrap_or_default().apply(QueueSettings::default()),
        }
    }
}

/// `PATCH /api/v1/organizer/events/{id}`: any subset of the settings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub hold_ttl_seconds: Option<i32>,
    pub max_tickets_per_order: Option<i32>,
    pub max_tickets_per_buyer: Option<i32>,
}

impl EventPatch {
    pub fn apply(self, mut s: EventSettings) -> EventSettings {
        s.title = self.title.unwrap_or(s.title);
        s.description = self.description.unwrap_or(s.description);
        s.category = self.category.unwrap_or(s.category);
        s.starts_at = self.starts_at.unwrap_or(s.starts_at);
        s.sale_starts_at = self.sale_starts_at.or(s.sale_starts_at);
        s.sale_ends_at = self.sale_ends_at.or(s.sale_ends_at);
        s.hold_ttl_seconds = self.hold_ttl_seconds.unwrap_or(s.hold_ttl_seconds);
        s.max_tickets_per_order = self.max_tickets_per_order.unwrap_or(s.max_tickets_per_order);
        s.max_tickets_per_buyer = self.max_tickets_per_buyer.unwrap_or(s.max_tickets_per_buyer);
        s
    }
}

/// An event as its organizer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizerEvent {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub status: EventStatus,
    pub catalog_version: i64,
    #[serde(flatten)]
    pub settings: EventSettings,
}

/// An event's row as the organizer API reads it.
struct EventRow {
    id: Uuid,
    venue_id: Uuid,
    status: EventStatus,
    catalog_version: i64,
    title: String,
    description: String,
    category: String,
    starts_at: DateTime<Utc>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    hold_ttl_seconds: i32,
    max_tickets_per_order: i32,
    max_tickets_per_buyer: i32,
    queue_enabled: bool,
    new_users_per_minute: i32,
    total_active_users: i32,
    session_duration_seconds: i32,
    prequeue_starts_at: Option<DateTime<Utc>>,
    queue_paused: bool,
    queue_pow_difficulty: i16,
    queue_message: String,
    queue_accent_color: String,
}

impl From<EventRow> for OrganizerEvent {
    fn from(row: EventRow) -> Self {
        OrganizerEvent {
            id: row.id,
            venue_id: row.venue_id,
            status: row.status,
            catalog_version: row.catalog_version,
            settings: EventSettings {
                title: row.title,
                description: row.description,
                category: row.category,
                starts_at: row.starts_at,
                sale_starts_at: row.sale_starts_at,
                sale_ends_at: row.sale_ends_at,
                hold_ttl_seconds: row.hold_ttl_seconds,
                max_tickets_per_order: row.max_tickets_per_order,
                max_tickets_per_buyer: row.max_tickets_per_buyer,
                queue: QueueSettings {
                    queue_enabled: row.queue_enabled,
                    new_users_per_minute: row.new_users_per_minute,
                    total_active_users: row.total_active_users,
                    session_duration_seconds: row.session_duration_seconds,
                    prequeue_starts_at: row.prequeue_starts_at,
                    queue_paused: row.queue_paused,
                    pow_difficulty: row.queue_pow_difficulty,
                    message: row.queue_message,
                    accent_color: row.queue_accent_color,
                },
            },
        }
    }
}

/// The organizer's events by start, or (`only`) one of them.
async fn fetch_events(
    db: impl sqlx::PgExecutor<'_>,
    organizer: Uuid,
    only: Option<Uuid>,
) -> Result<Vec<OrganizerEvent>, sqlx::Error> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT id, venue_id, status AS "status: EventStatus", catalog_version, title, description, category,
                  starts_at, sale_starts_at, sale_ends_at, hold_ttl_seconds, max_tickets_per_order,
                  max_tickets_per_buyer, queue_enabled, new_users_per_minute, total_active_users,
                  session_duration_seconds, prequeue_starts_at, queue_paused, queue_pow_difficulty, queue_message,
                  queue_accent_color
           FROM events WHERE organizer_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY starts_at"#,
        organizer,
        only,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(OrganizerEvent::from).collect())
}

/// Creates a draft event and one inventory row per seat of its venue.
pub async fn create_event(db: &PgPool, organizer: Uuid, new: NewEvent) -> Result<OrganizerEvent, ApiError> {
    let venue_id = new.venue_id;
    let settings = new.settings();
    settings.validate().map_err(ApiError::invalid)?;
    let mut tx = db.begin().await?;
    let owns_venue: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM venues WHERE id = $1 AND organizer_id = $2) AS "owns!""#,
        venue_id,
        organizer,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !owns_venue {
        return Err(ApiError::not_found("venue"));
    }
    let id = Uuid::new_v4();
    // The row starts with its required columns; `write_settings` owns the rest.
    sqlx::query!(
        "INSERT INTO events (id, organizer_id, venue_id, title, category, starts_at) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        organizer,
        venue_id,
        &settings.title,
        &settings.category,
        settings.starts_at,
    )
    .execute(&mut *tx)
    .await?;
    write_settings(&mut tx, id, &settings).await?;
    sqlx::query!(
        "INSERT INTO inventory (event_id, seat_id, section_id, tier_id, price_cents, sort_key)
         SELECT $1, s.id, s.section_id, s.tier_id, t.price_cents,
                row_number() OVER (PARTITION BY s.section_id ORDER BY length(s.row_label), s.row_label, s.number)
         FROM seats s JOIN price_tiers t ON t.id = s.tier_id WHERE s.venue_id = $2",
        id,
        venue_id,
    )
    .execute(&mut *tx)
    .await?;
    let event = fetch_event(&mut *tx, organizer, id).await?;
    tx.commit().await?;
    analyze_inventory(db).await;
    Ok(event)
}

async fn write_settings(tx: &mut sqlx::PgConnection, id: Uuid, s: &EventSettings) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE events SET title = $2, description = $3, category = $4, starts_at = $5,
             sale_starts_at = $6, sale_ends_at = $7, hold_ttl_seconds = $8,
             max_tickets_per_order = $9, max_tickets_per_buyer = $10, queue_enabled = $11,
             new_users_per_minute = $12, total_active_users = $13, session_duration_seconds = $14,
             prequeue_starts_at = $15, queue_paused = $16, queue_pow_difficulty = $17,
             queue_message = $18, queue_accent_color = $19,
             catalog_version = catalog_version + 1, updated_at = now()
         WHERE id = $1",
        id,
        &s.title,
        &s.description,
        &s.category,
        s.starts_at,
        s.sale_starts_at,
        s.sale_ends_at,
        s.hold_ttl_seconds,
        s.max_tickets_per_order,
        s.max_tickets_per_buyer,
        s.queue.queue_enabled,
        s.queue.new_users_per_minute,
        s.queue.total_active_users,
        s.queue.session_duration_seconds,
        s.queue.prequeue_starts_at,
        s.queue.queue_paused,
        s.queue.pow_difficulty,
        &s.queue.message,
        &s.queue.accent_color,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// One organizer's event; another organizer's looks exactly like a missing one.
pub async fn fetch_event(
    db: impl sqlx::PgExecutor<'_>,
    organizer: Uuid,
    id: Uuid,
) -> Result<OrganizerEvent, ApiError> {
    fetch_events(db, organizer, Some(id)).await?.pop().ok_or_else(|| ApiError::not_found("event"))
}

/// Reads, changes and validates an event's settings under a row lock.
pub async fn update_settings(
    db: &PgPool,
    organizer: Uuid,
    id: Uuid,
    change: impl FnOnce(EventSettings) -> EventSettings,
) -> Result<OrganizerEvent, ApiError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT id FROM events WHERE id = $1 AND organizer_id = $2 FOR UPDATE", id, organizer)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let current = fetch_event(&mut *tx, organizer, id).await?;
    let settings = change(current.settings);
    settings.validate().map_err(ApiError::invalid)?;
    write_settings(&mut tx, id, &settings).await?;
    let event = fetch_event(&mut *tx, organizer, id).await?;
    tx.commit().await?;
    analyze_inventory(db).await;
    Ok(event)
}

pub async fn change_status(
    db: &PgPool,
    organizer: Uuid,
    id: Uuid,
    action: StatusAction,
) -> Result<OrganizerEvent, ApiError> {
    let mut tx = db.begin().await?;
    let status: EventStatus = sqlx::query_scalar!(
        r#"SELECT status AS "status: EventStatus" FROM events WHERE id = $1 AND organizer_id = $2 FOR UPDATE"#,
        id,
        organizer,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("event"))?;
    let next = status
        .apply(action)
        .map_err(|message| ApiError::new(StatusCode::CONFLICT, "invalid_status_transition", message))?;
    sqlx::query!(
        "UPDATE events SET status = $2, catalog_version = catalog_version + 1, updated_at = now() WHERE id = $1",
        id,
        next as EventStatus,
    )
    .execute(&mut *tx)
    .await?;
    let event = fetch_event(&mut *tx, organizer, id).await?;
    tx.commit().await?;
    analyze_inventory(db).await;
    Ok(event)
}

/// Thousands of an event's seats arrive or change at once, and the sale
/// may open within the minute, before autovacuum analyzes: on the old
/// statistics a hold plans a scan of the whole event instead of one seat's
/// index entry.
async fn analyze_inventory(db: &PgPool) {
    if let Err(e) = sqlx::query!("ANALYZE inventory").execute(db).await {
        tracing::warn!(error = %e, "could not analyze inventory");
    }
}

/// The organizer's events, by start.
pub async fn organizer_events(db: &PgPool, organizer: Uuid) -> Result<Vec<OrganizerEvent>, sqlx::Error> {
    fetch_events(db, organizer, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EventSettings {
        let starts_at = "2027-06-01T19:00:00Z".parse().unwrap();
        NewEvent {
            venue_id: Uuid::nil(),
            title: "Show".into(),
            description: String::new(),
            category: "music".into(),
            starts_at,
            sale_starts_at: Some("2027-01-01T10:00:00Z".parse().unwrap()),
            sale_ends_at: None,
            hold_ttl_seconds: None,
            max_tickets_per_order: None,
            max_tickets_per_buyer: None,
            queue: None,
        }
        .settings()
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = settings();
        assert_eq!((s.hold_ttl_seconds, s.max_tickets_per_order, s.max_tickets_per_buyer), (600, 4, 8));
        s.validate().unwrap();
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        type Change = Box<dyn Fn(&mut EventSettings)>;
        let cases: Vec<(&str, Change)> = vec![
            ("hold_ttl_seconds", Box::new(|s| s.hold_ttl_seconds = 59)),
            ("hold_ttl_seconds", Box::new(|s| s.hold_ttl_seconds = 901)),
            ("max_tickets_per_order", Box::new(|s| s.max_tickets_per_order = 0)),
            ("max_tickets_per_buyer", Box::new(|s| s.max_tickets_per_buyer = 3)),
            ("title", Box::new(|s| s.title = "  ".into())),
            ("sale_ends_at", Box::new(|s| s.sale_ends_at = s.sale_starts_at)),
            ("prequeue_starts_at", Box::new(|s| s.queue.prequeue_starts_at = Some(s.starts_at))),
            ("rates", Box::new(|s| s.queue.new_users_per_minute = 0)),
            ("pow_difficulty", Box::new(|s| s.queue.pow_difficulty = 25)),
            ("accent_color", Box::new(|s| s.queue.accent_color = "red;}".into())),
        ];
        for (field, change) in cases {
            let mut s = settings();
            change(&mut s);
            let err = s.validate().unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn status_follows_the_lifecycle() {
        use EventStatus::*;
        assert_eq!(Draft.apply(StatusAction::Publish), Ok(OnSale));
        assert_eq!(OnSale.apply(StatusAction::Close), Ok(Closed));
        assert_eq!(SoldOut.apply(StatusAction::Cancel), Ok(Cancelled));
        assert!(OnSale.apply(StatusAction::Publish).is_err());
        assert!(Cancelled.apply(StatusAction::Publish).is_err());
        assert!(Draft.apply(StatusAction::Close).is_err());
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let s = settings();
        let patch = EventPatch { title: Some("New".into()), ..Default::default() };
        let changed = patch.apply(s.clone());
        assert_eq!(changed.title, "New");
        assert_eq!(EventSettings { title: s.title.clone(), ..changed }, s);
    }
}
