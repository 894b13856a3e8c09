//! Seat holds in Postgres: compare-and-swap on per-seat inventory rows.
//!
//! A hold is one short transaction. Its conditional UPDATE matches only
//! rows that are `AVAILABLE` or `HELD` with `held_until < now()`, so a
//! lapsed hold is free to take even if the sweeper never ran. Nothing locks
//! the event: concurrent buyers of different seats never wait for each
//! other, and buyers of the same seat wait only for that seat's row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::GateCheck;
use crate::error::{ApiError, sql_refusal};
use crate::holds::{
    ExtendError, HoldBody, HoldLimits, HoldPlan, PlanError, SeatPool, Selection, extended_expiry,
};
use crate::warm::WarmPool;

/// Why a hold was refused.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("event not found")]
    EventNotFound,
    #[error("this event is not on sale right now")]
    SaleNotOpen,
    #[error("some seats do not belong to this event")]
    UnknownSeats(Vec<Uuid>),
    #[error("some seats are no longer available")]
    SeatsUnavailable { unavailable: Vec<Uuid>, alternatives: Vec<Uuid> },
    #[error("only {available} seats are available there")]
    NotEnoughSeats { available: i64 },
    #[error("at most {limit} tickets per buyer for this event")]
    BuyerLimit { limit: i64 },
    #[error("client_reservation_id was already used for another event")]
    ClientIdReused,
    /// The event's limits changed since the request was planned (retried
    /// with these).
    #[error("the event's limits changed")]
    StaleLimits(HoldLimits),
    #[error("the hold kept meeting concurrent changes; try again")]
    Contended,
    /// Tried with a [`GateCheck`] left to the statement: the statement found
    /// the gate closed to that buyer, or the request was refused before the
    /// statement could check: the checkout gate must decide first.
    #[error("this event's checkout gate must decide first")]
    NeedsGate,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<HoldError> for ApiError {
    fn from(e: HoldError) -> Self {
        let message = e.to_string();
        match e {
            HoldError::Plan(PlanError::TooManySeats { max }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", message)
                    .with("max_per_order", max)
            }
            HoldError::Plan(PlanError::Invalid(_)) => ApiError::invalid(message),
            HoldError::EventNotFound => ApiError::not_found("event"),
            HoldError::SaleNotOpen => ApiError::new(StatusCode::CONFLICT, "sale_not_open", message),
            HoldError::UnknownSeats(seats) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_seats", message)
                    .with("unknown_seats", seats)
            }
            HoldError::SeatsUnavailable { unavailable, alternatives } => {
                ApiError::new(StatusCode::CONFLICT, "seat_unavailable", message)
                    .with("unavailable_seats", unavailable)
                    .with("available_alternatives", alternatives)
            }
            HoldError::NotEnoughSeats { available } => {
                ApiError::new(StatusCode::CONFLICT, "seat_unavailable", message)
                    .with("available_seats", available)
            }
            HoldError::BuyerLimit { limit } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "limit_exceeded", message)
                    .with("max_per_buyer", limit)
            }
            HoldError::ClientIdReused => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "client_reservation_id_reused", message)
            }
            HoldError::StaleLimits(_) | HoldError::Contended => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "try_again", message)
            }
            // The handler runs the gate instead of answering this.
            HoldError::NeedsGate => ApiError::internal(message),
            HoldError::Database(e) => e.into(),
        }
    }
}

/// A seat as buyers see it, in reservations and on tickets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeldSeat {
    pub seat_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    pub tier: String,
    pub price_cents: i64,
    /// A standing area's place rather than a numbered seat.
    #[serde(default)]
    pub general_admission: bool,
}

impl HeldSeat {
    /// How buyers are told where they are: "Floor, standing place 12" or
    /// "Lower 101, row B, seat 4".
    pub fn place(&self) -> String {
        crate::display::place_name(&self.section, &self.row, self.number, self.general_admission)
    }
}

/// Where a seat of an event stands (`inventory.status`): free, held by a
/// hold, booked by an order, or kept off sale by the organizer. A `HELD`
/// seat whose hold has lapsed is free to take (`seat_is_free` in SQL), and
/// reads as `AVAILABLE` wherever buyers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
    Blocked,
}

impl SeatStatus {
    /// As the API, the seat map and the live feed spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::Held => "HELD",
            SeatStatus::Booked => "BOOKED",
            SeatStatus::Blocked => "BLOCKED",
        }
    }
}

/// Where a hold stands (`reservations.status`): held until it is paid
/// for (committed), let go by its buyer (released) or lapsed (expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum HoldStatus {
    Held,
    Committed,
    Released,
    Expired,
}

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub event_id: Uuid,
    pub status: HoldStatus,
    pub seats: Vec<HeldSeat>,
    pub total_cents: i64,
    pub total_price: String,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    pub extended: bool,
}

/// A reservation as `reservation_view` and `hold_as_planned` answer it.
struct ReservationRow {
    id: Uuid,
    event_id: Uuid,
    status: HoldStatus,
    total_cents: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    extended: bool,
    seats: Json<Vec<HeldSeat>>,
}

impl From<ReservationRow> for Reservation {
    fn from(row: ReservationRow) -> Self {
        // A lapsed hold reads as expired even before the sweeper marks it.
        let lapsed = row.status == HoldStatus::Held && row.expires_at <= Utc::now();
        let status = if lapsed { HoldStatus::Expired } else { row.status };
        Reservation {
            reservation_id: row.id,
            event_id: row.event_id,
            status,
            seats: row.seats.0,
            total_cents: row.total_cents,
            total_price: format!("{}.{:02}", row.total_cents / 100, row.total_cents % 100),
            currency: row.currency,
            expires_at: row.expires_at,
            extended: row.extended,
        }
    }
}

/// Loads a reservation if it belongs to `buyer`, seats and all, in one query
/// (migration 0009's `reservation_view`, which `hold_as_planned` answers with too).
pub async fn load(
    db: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    buyer: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query_as!(
        ReservationRow,
        r#"SELECT v.id AS "id!", v.event_id AS "event_id!", v.status AS "status!: HoldStatus", v.total_cents AS "total_cents!",
                  v.currency AS "currency!", v.expires_at AS "expires_at!", v.extended AS "extended!",
                  v.seats AS "seats!: Json<Vec<HeldSeat>>"
           FROM reservation_view($1) v WHERE v.buyer_id = $2"#,
        id,
        buyer,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Reservation::from))
}

/// The buyer's hold on the event that is still running, if any: what a
/// reloaded checkout page or a second tab shows and pays.
pub async fn live_hold(db: &PgPool, event: Uuid, buyer: &str) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query_as!(
        ReservationRow,
        r#"SELECT v.id AS "id!", v.event_id AS "event_id!", v.status AS "status!: HoldStatus", v.total_cents AS "total_cents!",
                  v.currency AS "currency!", v.expires_at AS "expires_at!", v.extended AS "extended!",
                  v.seats AS "seats!: Json<Vec<HeldSeat>>"
           FROM (WITH held AS MATERIALIZED (
                     SELECT id, expires_at, created_at FROM reservations
                     WHERE event_id = $1 AND buyer_id = $2 AND status = 'held')
                 SELECT id, created_at FROM held WHERE expires_at > now()
                 ORDER BY created_at DESC LIMIT 1) r,
                reservation_view(r.id) v"#,
        event,
        buyer,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Reservation::from))
}

/// The limits and hold time last seen for each event, so a hold is planned
/// without asking Postgres first. `hold_as_planned` refuses a plan made with
/// limits the organizer has changed since, and names the current ones.
#[derive(Clone, Default)]
pub struct KnownLimits(Arc<Mutex<HashMap<Uuid, HoldLimits>>>);

impl KnownLimits {
    /// More events than this are forgotten at once (they are read again).
    const MAX_EVENTS: usize = 10_000;

    fn get(&self, event: Uuid) -> Option<HoldLimits> {
        self.0.lock().expect("limits lock").get(&event).copied()
    }

    /// Reads the event's limits now (and remembers them).
    async fn read(&self, db: &PgPool, event: Uuid) -> Result<HoldLimits, HoldError> {
        let row = sqlx::query!(
            "SELECT max_tickets_per_order, max_tickets_per_buyer, hold_ttl_seconds FROM events WHERE id = $1",
            event,
        )
        .fetch_optional(db)
        .await?
        .ok_or(HoldError::EventNotFound)?;
        let limits = HoldLimits {
            max_tickets_per_order: row.max_tickets_per_order.into(),
            max_tickets_per_buyer: row.max_tickets_per_buyer.into(),
            hold_ttl_seconds: row.hold_ttl_seconds.into(),
        };
        self.learn(event, limits);
        Ok(limits)
    }

    fn learn(&self, event: Uuid, limits: HoldLimits) {
        let mut known = self.0.lock().expect("limits lock");
        if known.len() >= Self::MAX_EVENTS {
            known.clear();
        }
        known.insert(event, limits);
    }
}

/// Takes seats for `buyer`: all requested seats or none.
/// Returns the reservation and whether it was created now (`false` on replay).
pub async fn hold(
    db: &WarmPool,
    known: &KnownLimits,
    event_id: Uuid,
    buyer: &str,
    body: HoldBody,
    gate: GateCheck<'_>,
) -> Result<(Reservation, bool), HoldError> {
    let client_id = body.client_reservation_id;
    let (mut limits, mut fresh) = match known.get(event_id) {
        Some(limits) => (limits, false),
        None if gate != GateCheck::Passed => return Err(HoldError::NeedsGate),
        None => (known.read(db, event_id).await?, true),
    };
    // Overlapping requests lock seats in one order, but the scoped expiry
    // frees seats in any order; a rare deadlock is simply retried, as is a
    // plan made with limits that changed meanwhile.
    for _ in 0..3 {
        let plan = match body.clone().plan(limits) {
            Ok(plan) => plan,
            Err(_) if gate != GateCheck::Passed => return Err(HoldError::NeedsGate),
            // Remembered limits may since have loosened: refuse only by current ones.
            Err(_) if !fresh => {
                (limits, fresh) = (known.read(db, event_id).await?, true);
                continue;
            }
            // The limits may have tightened since this request first held.
            Err(e) => return answer_replay_or(db, event_id, buyer, client_id, e.into()).await,
        };
        match try_hold(db, event_id, buyer, &plan, limits, gate).await {
            Err(HoldError::StaleLimits(current)) => {
                known.learn(event_id, current);
                (limits, fresh) = (current, true);
            }
            Err(HoldError::Database(e)) if is_deadlock(&e) => {}
            Ok(Some(reservation)) => return Ok((reservation, true)),
            // A concurrent duplicate of this request won: answer with theirs.
            Ok(None) => {
                let existing = replay(db, event_id, buyer, client_id).await?;
                return existing.map(|r| (r, false)).ok_or(HoldError::ClientIdReused);
            }
            Err(HoldError::NeedsGate) => return Err(HoldError::NeedsGate),
            // A duplicate that committed first took our seats or quota: answer with it.
            Err(e) => return answer_replay_or(db, event_id, buyer, client_id, e).await,
        }
    }
    Err(HoldError::Contended)
}

/// The hold an earlier request with the same client id made, or `refusal`.
async fn answer_replay_or(
    db: &PgPool,
    event_id: Uuid,
    buyer: &str,
    client_id: Uuid,
    refusal: HoldError,
) -> Result<(Reservation, bool), HoldError> {
    match replay(db, event_id, buyer, client_id).await? {
        Some(existing) => Ok((existing, false)),
        None => Err(refusal),
    }
}

fn is_deadlock(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|code| code == "40P01")
}

/// One attempt, one statement (`hold_as_planned`, one transaction on the
/// server) that answers with the reservation; `None` when a request with the
/// same client id got there first.
async fn try_hold(
    db: &WarmPool,
    event_id: Uuid,
    buyer: &str,
    plan: &HoldPlan,
    limits: HoldLimits,
    gate: GateCheck<'_>,
) -> Result<Option<Reservation>, HoldError> {
    let (seats, section, tier, quantity) = match &plan.selection {
        Selection::Seats(ids) => (Some(ids.as_slice()), None, None, ids.len() as i64),
        Selection::BestAvailable { pool: SeatPool::Section(id), quantity } => {
            (None, Some(*id), None, *quantity)
        }
        Selection::BestAvailable { pool: SeatPool::Tier(id), quantity } => (None, None, Some(*id), *quantity),
    };
    // First without waiting for locked seats; if too few are unlocked, the
    // missing ones may belong to requests that will fail: wait for them.
    for wait in [false, true] {
        let mut connection = db.acquire().await?;
        let held = sqlx::query_as!(
            ReservationRow,
            r#"SELECT v.id AS "id!", v.event_id AS "event_id!", v.status AS "status!: HoldStatus", v.total_cents AS "total_cents!",
                  v.currency AS "currency!", v.expires_at AS "expires_at!", v.extended AS "extended!",
                  v.seats AS "seats!: Json<Vec<HeldSeat>>"
               FROM hold_as_planned($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) v"#,
            event_id,
            buyer,
            plan.client_reservation_id,
            crate::ids::time_ordered(),
            limits.max_tickets_per_order as i32,
            limits.max_tickets_per_buyer as i32,
            limits.hold_ttl_seconds as i32,
            plan.ttl_seconds as i32,
            seats,
            section,
            tier,
            quantity as i32,
            wait,
            gate.unqueued(),
            gate.admitted().1,
        )
        .fetch_one(&mut *connection)
        .await;
        connection.keep_if_answered(&held);
        let e = match held {
            Ok(row) => return Ok(Some(row.into())),
            Err(e) => e,
        };
        let Some((code, detail)) = sql_refusal(&e) else { return Err(HoldError::Database(e)) };
        return Err(match code.as_str() {
            "SH004" => continue,
            "SH005" => return Ok(None),
            "SH001" => HoldError::BuyerLimit { limit: limits.max_tickets_per_buyer },
            "SH002" => {
                let free: Vec<Uuid> =
                    detail.trim_matches(['{', '}']).split(',').filter_map(|id| id.parse().ok()).collect();
                explain_conflict(db, event_id, seats.unwrap_or_default(), &free).await?
            }
            "SH003" => HoldError::NotEnoughSeats { available: detail.parse().unwrap_or(0) },
            "SH006" => HoldError::SaleNotOpen,
            "SH007" => match detail.split(',').map(str::parse).collect::<Result<Vec<i64>, _>>().as_deref() {
                Ok(&[max_tickets_per_order, max_tickets_per_buyer, hold_ttl_seconds]) => {
                    HoldError::StaleLimits(HoldLimits {
                        max_tickets_per_order,
                        max_tickets_per_buyer,
                        hold_ttl_seconds,
                    })
                }
                _ => HoldError::Database(e),
            },
            "SH008" => HoldError::EventNotFound,
            "SH009" => HoldError::NeedsGate,
            _ => HoldError::Database(e),
        });
    }
    unreachable!("the waiting attempt never asks to wait")
}

async fn replay(
    db: &PgPool,
    event_id: Uuid,
    buyer: &str,
    client_id: Uuid,
) -> Result<Option<Reservation>, HoldError> {
    let earlier = sqlx::query_as!(
        ReservationRow,
        r#"SELECT v.id AS "id!", v.event_id AS "event_id!", v.status AS "status!: HoldStatus", v.total_cents AS "total_cents!",
                  v.currency AS "currency!", v.expires_at AS "expires_at!", v.extended AS "extended!",
                  v.seats AS "seats!: Json<Vec<HeldSeat>>"
           FROM reservations r, reservation_view(r.id) v
           WHERE r.buyer_id = $1 AND r.client_reservation_id = $2"#,
        buyer,
        client_id,
    )
    .fetch_optional(db)
    .await?;
    match earlier {
        None => Ok(None),
        Some(row) if row.event_id != event_id => Err(HoldError::ClientIdReused),
        Some(row) => Ok(Some(row.into())),
    }
}

/// Tells unknown seats from taken ones (`free`: those that were free),
/// and suggests free seats nearby.
async fn explain_conflict(
    db: &PgPool,
    event_id: Uuid,
    requested: &[Uuid],
    free: &[Uuid],
) -> Result<HoldError, sqlx::Error> {
    let known: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT seat_id FROM inventory WHERE event_id = $1 AND seat_id = ANY($2)",
        event_id,
        requested,
    )
    .fetch_all(db)
    .await?;
    let unknown: Vec<Uuid> = requested.iter().filter(|id| !known.contains(id)).copied().collect();
    if !unknown.is_empty() {
        return Ok(HoldError::UnknownSeats(unknown));
    }
    let unavailable: Vec<Uuid> = requested.iter().filter(|id| !free.contains(id)).copied().collect();
    let alternatives: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT seat_id FROM inventory
         WHERE event_id = $1 AND seat_is_free(status, held_until) AND NOT seat_id = ANY($2)
           AND section_id IN (SELECT section_id FROM inventory WHERE event_id = $1 AND seat_id = ANY($2))
         ORDER BY sort_key LIMIT 10",
        event_id,
        requested,
    )
    .fetch_all(db)
    .await?;
    Ok(HoldError::SeatsUnavailable { unavailable, alternatives })
}

/// Marks lapsed holds expired and frees what they still hold (migration
/// 0007's `expire_lapsed_holds`); scoped to one buyer of one event, or
/// everything (the sweeper). Holds with a payment in flight are left to
/// the payment's outcome.
pub async fn expire_lapsed(tx: &mut PgConnection, scope: Option<(Uuid, &str)>) -> Result<i64, sqlx::Error> {
    let (event, buyer) = scope.map_or((None, None), |(e, b)| (Some(e), Some(b)));
    sqlx::query_scalar!(r#"SELECT expire_lapsed_holds($1, $2) AS "expired!""#, event, buyer)
        .fetch_one(tx)
        .await
}

/// Ends a hold for good (`status` = released or expired): frees its seats
/// and its buyer's quota.
pub async fn end_hold(tx: &mut PgConnection, id: Uuid, status: HoldStatus) -> Result<(), sqlx::Error> {
    // Found by its key alone, locked, and checked after (migration 0016).
    let ended = sqlx::query!(
        "WITH hold AS MATERIALIZED (SELECT id, status FROM reservations WHERE id = $1 FOR UPDATE)
         UPDATE reservations r SET status = $2, updated_at = now()
         FROM hold WHERE r.id = hold.id AND hold.status = 'held'
         RETURNING r.event_id, r.buyer_id, r.seat_count",
        id,
        status as HoldStatus,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(ended) = ended else { return Ok(()) };
    let (event_id, buyer, seats) = (ended.event_id, ended.buyer_id, ended.seat_count);
    sqlx::query!(
        "UPDATE inventory SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = version + 1
         WHERE hold_id = $1 AND status = 'HELD'",
        id,
    )
    .execute(&mut *tx)
    .await?;
    give_back_quota(tx, event_id, &buyer, seats).await
}

/// Seats a buyer no longer holds or owns stop counting against their limit.
pub async fn give_back_quota(
    tx: &mut PgConnection,
    event: Uuid,
    buyer: &str,
    seats: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE buyer_tickets SET tickets = tickets - $3 WHERE event_id = $1 AND buyer_id = $2",
        event,
        buyer,
        seats,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// `DELETE /api/v1/reservations/{id}`: releasing twice is fine; a paid or
/// paying reservation cannot be released.
pub async fn release(db: &PgPool, id: Uuid, buyer: &str) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    // Found by its key alone, as in `extend`.
    let row = sqlx::query!(
        r#"SELECT buyer_id, status AS "status: HoldStatus", payment_under_way(id) AS "paying!"
           FROM reservations WHERE id = $1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|row| row.buyer_id == buyer)
    .map(|row| (row.status, row.paying));
    match row {
        None => Err(ApiError::not_found("reservation")),
        Some((HoldStatus::Committed, _)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_committed", "this reservation is already paid"))
        }
        Some((_, true)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "commit_in_progress", "a payment is in progress"))
        }
        Some(_) => {
            end_hold(&mut tx, id, HoldStatus::Released).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    #[schema(minimum = 1, maximum = 300)]
    pub additional_seconds: i64,
}

/// `PATCH /api/v1/reservations/{id}/extend`.
pub async fn extend(db: &PgPool, id: Uuid, buyer: &str, additional: i64) -> Result<Reservation, ApiError> {
    let mut tx = db.begin().await?;
    // Found by its key alone, the buyer checked on the row found: asked for
    // both, Postgres may walk all the buyer's reservations to find it.
    let row = sqlx::query!(
        "SELECT buyer_id, status, expires_at, extended FROM reservations WHERE id = $1 FOR UPDATE",
        id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|row| row.buyer_id == buyer)
    .ok_or_else(|| ApiError::not_found("reservation"))?;
    let (status, expires_at, extended) = (row.status, row.expires_at, row.extended);
    if status != "held" {
        return Err(ApiError::new(
            StatusCode::GONE,
            "reservation_expired",
            format!("the reservation is {status}"),
        ));
    }
    let new_expiry = extended_expiry(expires_at, extended, additional, Utc::now()).map_err(|e| match e {
        ExtendError::Invalid => ApiError::invalid(e.to_string()),
        ExtendError::AlreadyExtended => {
            ApiError::new(StatusCode::CONFLICT, "already_extended", e.to_string())
        }
        ExtendError::Expired => ApiError::new(StatusCode::GONE, "reservation_expired", e.to_string()),
    })?;
    sqlx::query!(
        "UPDATE reservations SET expires_at = $2, extended = true, updated_at = now() WHERE id = $1",
        id,
        new_expiry,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE inventory SET held_until = $2, version = version + 1 WHERE hold_id = $1 AND status = 'HELD'",
        id,
        new_expiry,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    load(db, id, buyer).await?.ok_or_else(|| ApiError::not_found("reservation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_status_is_spelled_alike_in_json_and_in_the_live_feed() {
        for status in [SeatStatus::Available, SeatStatus::Held, SeatStatus::Booked, SeatStatus::Blocked] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
