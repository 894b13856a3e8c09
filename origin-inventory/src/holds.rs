//! The rules of a seat hold, apart from the database: what a request may
//! ask for, and how a reservation may be extended.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// Longest single extension of a hold, in seconds.
pub const MAX_EXTENSION_SECONDS: i64 = 300;

/// `POST /api/v1/events/{id}/reservations` as sent.
///
/// Either `seat_ids`, or `quantity` best-available seats of a `section_id`
/// or a `tier_id`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Chosen by the client; sending it again answers the same hold (`200`).
    pub client_reservation_id: Uuid,
    /// Exactly these seats, all or none.
    pub seat_ids: Option<Vec<Uuid>>,
    pub section_id: Option<Uuid>,
    pub tier_id: Option<Uuid>,
    /// How many best-available seats.
    #[schema(minimum = 1)]
    pub quantity: Option<i64>,
    /// Shorter than the event's hold time, if wanted.
    pub ttl_seconds: Option<i64>,
}

/// Where best-available seats come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeatPool {
    Section(Uuid),
    Tier(Uuid),
}

/// Which seats to take.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Exactly these seats, all or none.
    Seats(Vec<Uuid>),
    /// The best `quantity` free seats of a section or tier.
    BestAvailable { pool: SeatPool, quantity: i64 },
}

impl Selection {
    pub fn quantity(&self) -> i64 {
        match self {
            Selection::Seats(ids) => ids.len() as i64,
            Selection::BestAvailable { quantity, .. } => *quantity,
        }
    }
}

/// A validated hold request.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldPlan {
    pub client_reservation_id: Uuid,
    pub selection: Selection,
    pub ttl_seconds: i64,
}

/// The event's limits that a hold must respect.
#[derive(Debug, Clone, Copy)]
pub struct HoldLimits {
    pub max_tickets_per_order: i64,
    /// Counted by the database across the buyer's holds; named in refusals.
    pub max_tickets_per_buyer: i64,
    pub hold_ttl_seconds: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
    #[error("at most {max} tickets per order")]
    TooManySeats { max: i64 },
}

impl HoldBody {
    pub fn plan(self, limits: HoldLimits) -> Result<HoldPlan, PlanError> {
        let invalid = |m: &str| Err(PlanError::Invalid(m.to_owned()));
        let selection = match (self.seat_ids, self.section_id, self.tier_id, self.quantity) {
            (Some(ids), None, None, None) => {
                if ids.is_empty() {
                    return invalid("seat_ids must name at least one seat");
                }
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                if unique.len() != ids.len() {
                    return invalid("seat_ids contains the same seat twice");
                }
                Selection::Seats(unique)
            }
            (None, section, tier, Some(quantity)) => {
                let pool = match (section, tier) {
                    (Some(section), None) => SeatPool::Section(section),
                    (None, Some(tier)) => SeatPool::Tier(tier),
                    _ => return invalid("best available needs exactly one of section_id or tier_id"),
                };
                if quantity < 1 {
                    return invalid("quantity must be at least 1");
                }
                Selection::BestAvailable { pool, quantity }
            }
            _ => return invalid("send either seat_ids, or section_id/tier_id with quantity"),
        };
        if selection.quantity() > limits.max_tickets_per_order {
            return Err(PlanError::TooManySeats { max: limits.max_tickets_per_order });
        }
        let ttl_seconds = self.ttl_seconds.unwrap_or(limits.hold_ttl_seconds);
        if !(60..=limits.hold_ttl_seconds).contains(&ttl_seconds) {
            return Err(PlanError::Invalid(format!(
                "ttl_seconds must be between 60 and {}",
                limits.hold_ttl_seconds
            )));
        }
        Ok(HoldPlan { client_reservation_id: self.client_reservation_id, selection, ttl_seconds })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExtendError {
    #[error("additional_seconds must be between 1 and {MAX_EXTENSION_SECONDS}")]
    Invalid,
    #[error("a hold can be extended only once")]
    AlreadyExtended,
    #[error("the hold has expired")]
    Expired,
}

/// The new expiry of a hold extended by `additional` seconds at `now`.
pub fn extended_expiry(
    expires_at: DateTime<Utc>,
    already_extended: bool,
    additional: i64,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ExtendError> {
    if !(1..=MAX_EXTENSION_SECONDS).contains(&additional) {
        return Err(ExtendError::Invalid);
    }
    if expires_at <= now {
        return Err(ExtendError::Expired);
    }
    if already_extended {
        return Err(ExtendError::AlreadyExtended);
    }
    Ok(expires_at + Duration::seconds(additional))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HoldLimits =
        HoldLimits { max_tickets_per_order: 4, max_tickets_per_buyer: 8, hold_ttl_seconds: 600 };

    fn body(json: serde_json::Value) -> HoldBody {
        let mut json = json;
        json["client_reservation_id"] = serde_json::json!(Uuid::nil());
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn explicit_seats_and_best_available_are_both_accepted() {
        let a = Uuid::from_u128(1);
        let plan = body(serde_json::json!({"seat_ids": [a]})).plan(LIMITS).unwrap();
        assert_eq!(plan.selection, Selection::Seats(vec![a]));
        assert_eq!(plan.ttl_seconds, 600);
        let plan =
            body(serde_json::json!({"tier_id": a, "quantity": 2, "ttl_seconds": 120})).plan(LIMITS).unwrap();
        assert_eq!(plan.selection, Selection::BestAvailable { pool: SeatPool::Tier(a), quantity: 2 });
        assert_eq!(plan.ttl_seconds, 120);
    }

    #[test]
    fn limits_and_shapes_are_enforced() {
        let a = Uuid::from_u128(1);
        let seats: Vec<Uuid> = (1..=5).map(Uuid::from_u128).collect();
        assert_eq!(
            body(serde_json::json!({"seat_ids": seats})).plan(LIMITS),
            Err(PlanError::TooManySeats { max: 4 })
        );
        for bad in [
            serde_json::json!({"seat_ids": []}),
            serde_json::json!({"seat_ids": [a, a]}),
            serde_json::json!({"section_id": a}),
            serde_json::json!({"section_id": a, "tier_id": a, "quantity": 1}),
            serde_json::json!({"section_id": a, "quantity": 0}),
            serde_json::json!({"section_id": a, "quantity": -3}),
            serde_json::json!({"seat_ids": [a], "quantity": 1}),
            serde_json::json!({"seat_ids": [a], "ttl_seconds": 59}),
            serde_json::json!({"seat_ids": [a], "ttl_seconds": 601}),
            serde_json::json!({"seat_ids": [a], "ttl_seconds": -1}),
            serde_json::json!({}),
        ] {
            assert!(matches!(body(bad.clone()).plan(LIMITS), Err(PlanError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn a_hold_extends_once_by_at_most_five_minutes_before_it_lapses() {
        let now: DateTime<Utc> = "2030-01-01T12:00:00Z".parse().unwrap();
        let expires = now + Duration::seconds(100);
        assert_eq!(extended_expiry(expires, false, 300, now), Ok(expires + Duration::seconds(300)));
        assert_eq!(extended_expiry(expires, true, 60, now), Err(ExtendError::AlreadyExtended));
        assert_eq!(extended_expiry(expires, false, 301, now), Err(ExtendError::Invalid));
        assert_eq!(extended_expiry(expires, false, 0, now), Err(ExtendError::Invalid));
        assert_eq!(extended_expiry(now, false, 60, now), Err(ExtendError::Expired));
    }
}
