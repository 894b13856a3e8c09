//! Demo data for local runs, created through the same functions as the
//! organizer API: a 5,300-seat arena and four events.

use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::events::{self, NewEvent, QueuePatch, StatusAction};
use crate::venues::{self, RowSpec, SectionSpec, TierSpec, VenueSpec};

/// The demo organizer's key, unless `STAMPEDE_DEMO_API_KEY` sets another.
/// Public on purpose: demo data is for local runs only.
pub const DEFAULT_DEMO_KEY: &str = "sk_demo_local_only";

pub struct Demo {
    pub api_key: String,
    pub on_sale_event: Uuid,
}

/// Loads the demo once; later calls find it and report the same values.
pub async fn seed(db: &PgPool, api_key: &str) -> Result<Demo, ApiError> {
    let organizer = match auth::organizer_by_key(db, api_key).await? {
        Some(id) => id,
        None => create(db, api_key).await?,
    };
    let on_sale_event = sqlx::query_scalar!(
        "SELECT id FROM events WHERE organizer_id = $1 AND queue_enabled AND status = 'on_sale'
         AND sale_starts_at <= now() ORDER BY created_at LIMIT 1",
        organizer,
    )
    .fetch_one(db)
    .await?;
    Ok(Demo { api_key: api_key.to_owned(), on_sale_event })
}

fn rows(count: u8, seats: u32, premium_rows: u8) -> Vec<RowSpec> {
    (0..count)
        .map(|i| RowSpec {
            label: char::from(b'A' + i).to_string(),
            seats,
            tier: (i < premium_rows).then(|| "Premium".to_owned()),
            accessible: if i == 0 { vec![1, 2] } else { vec![] },
        })
        .collect()
}

fn arena() -> VenueSpec {
    let tier = |name: &str, price_cents| TierSpec { name: name.into(), price_cents, currency: "EUR".into() };
    let mut sections =
        vec![SectionSpec { name: "Floor".into(), tier: "Floor".into(), rows: vec![], capacity: Some(1500) }];
    for n in 101..=104 {
        sections.push(SectionSpec {
            name: format!("Lower {n}"),
            tier: "Standard".into(),
            rows: rows(20, 25, 3),
            capacity: None,
        });
    }
    for n in 201..=204 {
        sections.push(SectionSpec {
            name: format!("Balcony {n}"),
            tier: "Balcony".into(),
            rows: rows(15, 30, 0),
            capacity: None,
        });
    }
    VenueSpec {
        name: "Stampede Arena".into(),
        city: "Berlin".into(),
        timezone: "Europe/Berlin".into(),
        tiers: vec![
            tier("Floor", 6900),
            tier("Premium", 14900),
            tier("Standard", 9900),
            tier("Balcony", 5900),
        ],
        sections,
    }
}

async fn create(db: &PgPool, api_key: &str) -> Result<Uuid, ApiError> {
    let organizer = auth::create_organizer(db, "Demo Promotions", api_key).await?;
    let venue = venues::create_venue(db, organizer, &arena()).await?.id;
    let now = Utc::now();
    let day = Duration::days(1);
    // Shows start at 19:00 UTC (20:00 in Berlin in winter), some days from now.
    let evening =
        |days: i32| (now + day * days).date_naive().and_hms_opt(19, 0, 0).expect("valid time").and_utc();
    let queue = |enabled, prequeue_starts_at| QueuePatch {
        enabled: Some(enabled),
        new_users_per_minute: Some(300),
        total_active_users: Some(500),
        session_duration_seconds: Some(600),
        prequeue_starts_at: Some(prequeue_starts_at),
        message: Some("Tickets are limited to four per order. Keep this page open.".into()),
        ..QueuePatch::default()
    };
    let event =
        |title: &str, description: &str, category: &str, starts_in: i32, sale_starts, queue| NewEvent {
            venue_id: venue,
            title: title.into(),
            description: description.into(),
            category: category.into(),
            starts_at: evening(starts_in),
            sale_starts_at: Some(sale_starts),
            sale_ends_at: Some(now + day * (starts_in - 1)),
            hold_ttl_seconds: None,
            max_tickets_per_order: None,
            max_tickets_per_buyer: None,
            queue: Some(queue),
        };
    let sale_later = now + day * 2;
    let demo = [
        (
            event(
                "Aurora Skies — Live in Berlin",
                "The reunion tour everyone is queueing for.",
                "music",
                45,
                now - Duration::hours(1),
                queue(true, None),
            ),
            true,
        ),
        (
            event(
                "Late Night Jazz Sessions",
                "Three quartets, one long night.",
                "music",
                20,
                now - day,
                queue(false, None),
            ),
            true,
        ),
        (
            event(
                "Comedy Gala",
                "Stand-up from six countries. Pre-queue opens a day before the sale.",
                "comedy",
                60,
                sale_later,
                queue(true, Some(sale_later - day)),
            ),
            true,
        ),
        (
            event(
                "Philharmonic New Year",
                "Programme to be announced.",
                "classical",
                90,
                now + day * 30,
                queue(false, None),
            ),
            false,
        ),
    ];
    for (new, publish) in demo {
        let created = events::create_event(db, organizer, new).await?;
        if publish {
            events::change_status(db, organizer, created.id, StatusAction::Publish).await?;
        }
    }
    Ok(organizer)
}
