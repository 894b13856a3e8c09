//! The catalog's JSON: what `GET /api/v1/events[/{id}]` answers (the
//! origin builds it in SQL, `catalog_event` and `catalog_list`), read by the
//! edge's pages and by the origin's own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Venue {
    pub name: String,
    pub city: String,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceRange {
    pub min_cents: Option<i64>,
    pub max_cents: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Availability {
    pub total_seats: i64,
    pub available_seats: i64,
}

/// One event as `GET /api/v1/events[/{id}]` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub starts_at: DateTime<Utc>,
    pub status: String,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub venue: Venue,
    pub price_range: PriceRange,
    pub availability: Availability,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Meta {
    pub total: u64,
    pub page: u32,
    pub limit: u32,
}

/// `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventList {
    pub data: Vec<Event>,
    pub meta: Meta,
}
