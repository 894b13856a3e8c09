//! Seat holds in Postgres: compare-and-swap on per-seat inventory rows.
//!
//! A hold is one short transaction. Its conditional UPDATE matches only
//! rows that are `AVAILABLE` or `HELD` with `held_until < now()`, so a
//! lapsed hold is free to take even if the sweeper never ran. Nothing locks
//! the event: concurrent buyers of different seats never wait for each
//! other, and buyers of the same seat wait only for that seat's row.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access::{Checkout, EventId, ReservationId};
use crate::app::AppState;
use crate::error::{ApiError, ApiJson};
use crate::holds::{
    ExtendError, HoldBody, HoldLimits, HoldPlan, PlanError, SeatPool, Selection, extended_expiry,
};
use crate::metrics::Outcome;

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
            HoldError::Database(e) => e.into(),
        }
    }
}

/// A seat as buyers see it, in reservations and on tickets.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HeldSeat {
    pub seat_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    pub tier: String,
    pub price_cents: i64,
}

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub event_id: Uuid,
    pub status: String,
    pub seats: Vec<HeldSeat>,
    pub total_cents: i64,
    pub total_price: String,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    pub extended: bool,
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: Uuid,
    event_id: Uuid,
    buyer_id: String,
    status: String,
    total_cents: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    extended: bool,
}

/// Loads a reservation if it belongs to `buyer`.
pub async fn load(
    db: impl sqlx::PgExecutor<'_> + Copy,
    id: Uuid,
    buyer: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row: Option<ReservationRow> = sqlx::query_as(
        "SELECT id, event_id, buyer_id, status, total_cents, currency, expires_at, extended
         FROM reservations WHERE id = $1 AND buyer_id = $2",
    )
    .bind(id)
    .bind(buyer)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let seats = sqlx::query_as(
        "SELECT rs.seat_id, sec.name AS section, s.row_label AS row, s.number, t.name AS tier, rs.price_cents
         FROM reservation_seats rs
         JOIN seats s ON s.id = rs.seat_id
         JOIN sections sec ON sec.id = s.section_id
         JOIN price_tiers t ON t.id = s.tier_id
         WHERE rs.reservation_id = $1 ORDER BY sec.position, s.row_label, s.number",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    // A lapsed hold reads as expired even before the sweeper marks it.
    let status =
        if row.status == "held" && row.expires_at <= Utc::now() { "expired".into() } else { row.status };
    debug_assert_eq!(row.buyer_id, buyer);
    Ok(Some(Reservation {
        reservation_id: row.id,
        event_id: row.event_id,
        status,
        seats,
        total_cents: row.total_cents,
        total_price: format!("{}.{:02}", row.total_cents / 100, row.total_cents % 100),
        currency: row.currency,
        expires_at: row.expires_at,
        extended: row.extended,
    }))
}

#[derive(sqlx::FromRow)]
struct SaleRules {
    on_sale: bool,
    max_tickets_per_order: i32,
    max_tickets_per_buyer: i32,
    hold_ttl_seconds: i32,
    currency: String,
}

/// Takes seats for `buyer`: all requested seats or none.
/// Returns the reservation and whether it was created now (`false` on replay).
pub async fn hold(
    db: &PgPool,
    event_id: Uuid,
    buyer: &str,
    body: HoldBody,
) -> Result<(Reservation, bool), HoldError> {
    if let Some(existing) = replay(db, event_id, buyer, body.client_reservation_id).await? {
        return Ok((existing, false));
    }
    let rules: SaleRules = sqlx::query_as(
        "SELECT e.status = 'on_sale' AND coalesce(e.sale_starts_at <= now(), true)
                AND coalesce(e.sale_ends_at > now(), true) AS on_sale,
                e.max_tickets_per_order, e.max_tickets_per_buyer, e.hold_ttl_seconds,
                (SELECT min(t.currency) FROM price_tiers t WHERE t.venue_id = e.venue_id) AS currency
         FROM events e WHERE e.id = $1",
    )
    .bind(event_id)
    .fetch_optional(db)
    .await?
    .ok_or(HoldError::EventNotFound)?;
    if !rules.on_sale {
        return Err(HoldError::SaleNotOpen);
    }
    let plan = body.plan(HoldLimits {
        max_tickets_per_order: rules.max_tickets_per_order.into(),
        hold_ttl_seconds: rules.hold_ttl_seconds.into(),
    })?;

    // Overlapping requests lock seats in one order, but the scoped expiry
    // below frees seats in any order; a rare deadlock is simply retried.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_hold(db, event_id, buyer, &plan, &rules).await {
            Err(HoldError::Database(e)) if attempts < 3 && is_deadlock(&e) => continue,
            Ok(Some(id)) => {
                let reservation = load(db, id, buyer).await?.expect("just committed");
                return Ok((reservation, true));
            }
            // A concurrent duplicate of this request won: answer with theirs.
            Ok(None) => {
                let existing = replay(db, event_id, buyer, plan.client_reservation_id).await?;
                return existing.map(|r| (r, false)).ok_or(HoldError::ClientIdReused);
            }
            // A duplicate that committed first took our seats or quota: answer with it.
            Err(e) => {
                return match replay(db, event_id, buyer, plan.client_reservation_id).await? {
                    Some(existing) => Ok((existing, false)),
                    None => Err(e),
                };
            }
        }
    }
}

fn is_deadlock(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|code| code == "40P01")
}

/// One attempt in one transaction; `None` when a duplicate request got there first.
async fn try_hold(
    db: &PgPool,
    event_id: Uuid,
    buyer: &str,
    plan: &HoldPlan,
    rules: &SaleRules,
) -> Result<Option<Uuid>, HoldError> {
    let reservation_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    // The buyer's own lapsed holds must not count against their limit.
    expire_lapsed(&mut tx, Some((event_id, buyer))).await?;
    reserve_buyer_quota(
        &mut tx,
        event_id,
        buyer,
        plan.selection.quantity(),
        rules.max_tickets_per_buyer.into(),
    )
    .await?;
    let taken = take_seats(&mut tx, event_id, reservation_id, plan).await?;
    let total: i64 = taken.iter().map(|(_, price)| price).sum();
    // `now()` is the transaction's start, so expires_at equals the seats' held_until.
    let inserted = sqlx::query(
        "INSERT INTO reservations (id, event_id, buyer_id, client_reservation_id, seat_count, total_cents, currency, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
         ON CONFLICT (buyer_id, client_reservation_id) DO NOTHING",
    )
    .bind(reservation_id)
    .bind(event_id)
    .bind(buyer)
    .bind(plan.client_reservation_id)
    .bind(taken.len() as i32)
    .bind(total)
    .bind(&rules.currency)
    .bind(plan.ttl_seconds as f64)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO reservation_seats (reservation_id, seat_id, price_cents)
         SELECT $1, seat_id, price FROM unnest($2::uuid[], $3::bigint[]) AS t(seat_id, price)",
    )
    .bind(reservation_id)
    .bind(taken.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(taken.iter().map(|(_, price)| *price).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(reservation_id))
}

async fn replay(
    db: &PgPool,
    event_id: Uuid,
    buyer: &str,
    client_id: Uuid,
) -> Result<Option<Reservation>, HoldError> {
    let id: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, event_id FROM reservations WHERE buyer_id = $1 AND client_reservation_id = $2",
    )
    .bind(buyer)
    .bind(client_id)
    .fetch_optional(db)
    .await?;
    match id {
        None => Ok(None),
        Some((_, other)) if other != event_id => Err(HoldError::ClientIdReused),
        Some((id, _)) => Ok(load(db, id, buyer).await?),
    }
}

/// Counts `quantity` more tickets against the buyer's limit, atomically.
async fn reserve_buyer_quota(
    tx: &mut PgConnection,
    event_id: Uuid,
    buyer: &str,
    quantity: i64,
    limit: i64,
) -> Result<(), HoldError> {
    let counted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO buyer_tickets AS b (event_id, buyer_id, tickets) VALUES ($1, $2, $3)
         ON CONFLICT (event_id, buyer_id) DO UPDATE SET tickets = b.tickets + EXCLUDED.tickets
         WHERE b.tickets + EXCLUDED.tickets <= $4
         RETURNING tickets",
    )
    .bind(event_id)
    .bind(buyer)
    .bind(quantity as i32)
    .bind(limit as i32)
    .fetch_optional(&mut *tx)
    .await?;
    match counted {
        Some(n) if i64::from(n) <= limit => Ok(()),
        _ => Err(HoldError::BuyerLimit { limit }),
    }
}

/// The compare-and-swap: marks free seats as held by `reservation_id`.
async fn take_seats(
    tx: &mut PgConnection,
    event_id: Uuid,
    reservation_id: Uuid,
    plan: &HoldPlan,
) -> Result<Vec<(Uuid, i64)>, HoldError> {
    // Rows are locked in seat_id order, so overlapping requests cannot deadlock.
    const FREE: &str = "(status = 'AVAILABLE' OR (status = 'HELD' AND held_until < now()))";
    const TAKE: &str = "UPDATE inventory i
         SET status = 'HELD', hold_id = $2, held_until = now() + make_interval(secs => $3), version = i.version + 1
         FROM picked WHERE i.event_id = $1 AND i.seat_id = picked.seat_id
         RETURNING i.seat_id, i.price_cents";
    let ttl = plan.ttl_seconds as f64;
    match &plan.selection {
        Selection::Seats(ids) => {
            let taken: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
                "WITH picked AS (SELECT seat_id FROM inventory
                     WHERE event_id = $1 AND seat_id = ANY($4) AND {FREE} ORDER BY seat_id FOR UPDATE)
                 {TAKE}"
            ))
            .bind(event_id)
            .bind(reservation_id)
            .bind(ttl)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            if taken.len() == ids.len() {
                return Ok(taken);
            }
            Err(explain_conflict(tx, event_id, ids, &taken).await?)
        }
        Selection::BestAvailable { pool, quantity } => {
            let (column, pool_id) = match pool {
                SeatPool::Section(id) => ("section_id", id),
                SeatPool::Tier(id) => ("tier_id", id),
            };
            // First, SKIP LOCKED: a crowd asking for "any 2 seats" spreads over
            // free seats instead of queueing. Under a savepoint, so a short
            // take can be undone, its row locks released with it.
            let take =
                BestAvailable { event_id, reservation_id, ttl, pool_id: *pool_id, quantity: *quantity };
            sqlx::query("SAVEPOINT best_available").execute(&mut *tx).await?;
            let taken = take
                .run(
                    tx,
                    &format!(
                        "WITH picked AS (SELECT seat_id FROM inventory
                             WHERE event_id = $1 AND {column} = $4 AND {FREE}
                             ORDER BY sort_key LIMIT $5 FOR UPDATE SKIP LOCKED)
                         {TAKE}"
                    ),
                )
                .await?;
            if taken.len() as i64 == *quantity {
                return Ok(taken);
            }
            // Too few unlocked: the missing seats may be locked by requests
            // that will fail and let them go. Wait for every free seat (they
            // are few now), in seat_id order like all locking here, and take
            // the best of those still free. The last seats always sell.
            sqlx::query("ROLLBACK TO SAVEPOINT best_available").execute(&mut *tx).await?;
            let taken = take
                .run(
                    tx,
                    &format!(
                        "WITH free AS MATERIALIZED (SELECT seat_id, sort_key FROM inventory
                             WHERE event_id = $1 AND {column} = $4 AND {FREE}
                             ORDER BY seat_id FOR UPDATE),
                         picked AS (SELECT seat_id FROM free ORDER BY sort_key LIMIT $5)
                         {TAKE}"
                    ),
                )
                .await?;
            if taken.len() as i64 == *quantity {
                return Ok(taken);
            }
            Err(HoldError::NotEnoughSeats { available: taken.len() as i64 })
        }
    }
}

/// What both best-available passes bind: $1 event, $2 hold, $3 TTL,
/// $4 the section or tier, $5 how many seats.
struct BestAvailable {
    event_id: Uuid,
    reservation_id: Uuid,
    ttl: f64,
    pool_id: Uuid,
    quantity: i64,
}

impl BestAvailable {
    async fn run(&self, tx: &mut PgConnection, sql: &str) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
        sqlx::query_as(sql)
            .bind(self.event_id)
            .bind(self.reservation_id)
            .bind(self.ttl)
            .bind(self.pool_id)
            .bind(self.quantity)
            .fetch_all(tx)
            .await
    }
}

/// Tells unknown seats from taken ones, and suggests free seats nearby.
async fn explain_conflict(
    tx: &mut PgConnection,
    event_id: Uuid,
    requested: &[Uuid],
    taken: &[(Uuid, i64)],
) -> Result<HoldError, sqlx::Error> {
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT seat_id FROM inventory WHERE event_id = $1 AND seat_id = ANY($2)")
            .bind(event_id)
            .bind(requested)
            .fetch_all(&mut *tx)
            .await?;
    let unknown: Vec<Uuid> = requested.iter().filter(|id| !known.contains(id)).copied().collect();
    if !unknown.is_empty() {
        return Ok(HoldError::UnknownSeats(unknown));
    }
    let unavailable: Vec<Uuid> =
        requested.iter().filter(|id| !taken.iter().any(|(t, _)| t == *id)).copied().collect();
    let alternatives: Vec<Uuid> = sqlx::query_scalar(
        "SELECT seat_id FROM inventory
         WHERE event_id = $1 AND status = 'AVAILABLE' AND NOT seat_id = ANY($2)
           AND section_id IN (SELECT section_id FROM inventory WHERE event_id = $1 AND seat_id = ANY($2))
         ORDER BY sort_key LIMIT 10",
    )
    .bind(event_id)
    .bind(requested)
    .fetch_all(&mut *tx)
    .await?;
    Ok(HoldError::SeatsUnavailable { unavailable, alternatives })
}

/// Marks lapsed holds expired and frees what they still hold; scoped to one
/// buyer of one event, or everything (the sweeper). Holds with a payment in
/// flight are left to the payment's outcome.
pub async fn expire_lapsed(tx: &mut PgConnection, scope: Option<(Uuid, &str)>) -> Result<i64, sqlx::Error> {
    let (event, buyer) = scope.map_or((None, None), |(e, b)| (Some(e), Some(b)));
    sqlx::query_scalar(
        "WITH lapsed AS (
             SELECT r.id FROM reservations r
             WHERE r.status = 'held' AND r.expires_at < now()
               AND ($1::uuid IS NULL OR (r.event_id = $1 AND r.buyer_id = $2))
               AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id AND p.status = 'pending')
             ORDER BY r.expires_at LIMIT 500 FOR UPDATE SKIP LOCKED),
         marked AS (
             UPDATE reservations r SET status = 'expired', updated_at = now()
             FROM lapsed WHERE r.id = lapsed.id
             RETURNING r.id, r.event_id, r.buyer_id, r.seat_count),
         freed AS (
             UPDATE inventory i SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = i.version + 1
             FROM marked WHERE i.hold_id = marked.id AND i.status = 'HELD'
             RETURNING 1),
         uncounted AS (
             UPDATE buyer_tickets b SET tickets = b.tickets - m.seats
             FROM (SELECT event_id, buyer_id, sum(seat_count)::int AS seats FROM marked GROUP BY 1, 2) m
             WHERE b.event_id = m.event_id AND b.buyer_id = m.buyer_id
             RETURNING 1)
         SELECT count(*) FROM marked",
    )
    .bind(event)
    .bind(buyer)
    .fetch_one(tx)
    .await
}

/// Ends a hold for good (`status` = released or expired): frees its seats
/// and its buyer's quota.
pub async fn end_hold(tx: &mut PgConnection, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    let ended: Option<(Uuid, String, i32)> = sqlx::query_as(
        "UPDATE reservations SET status = $2, updated_at = now() WHERE id = $1 AND status = 'held'
         RETURNING event_id, buyer_id, seat_count",
    )
    .bind(id)
    .bind(status)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((event_id, buyer, seats)) = ended else { return Ok(()) };
    sqlx::query(
        "UPDATE inventory SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = version + 1
         WHERE hold_id = $1 AND status = 'HELD'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE buyer_tickets SET tickets = tickets - $3 WHERE event_id = $1 AND buyer_id = $2")
        .bind(event_id)
        .bind(buyer)
        .bind(seats)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `DELETE /api/v1/reservations/{id}`: releasing twice is fine; a paid or
/// paying reservation cannot be released.
pub async fn release(db: &PgPool, id: Uuid, buyer: &str) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT status, EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id AND p.status = 'pending')
         FROM reservations r WHERE id = $1 AND buyer_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(buyer)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        None => Err(ApiError::not_found("reservation")),
        Some((status, _)) if status == "committed" => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_committed", "this reservation is already paid"))
        }
        Some((_, true)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "commit_in_progress", "a payment is in progress"))
        }
        Some(_) => {
            end_hold(&mut tx, id, "released").await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    pub additional_seconds: i64,
}

/// `PATCH /api/v1/reservations/{id}/extend`.
pub async fn extend(db: &PgPool, id: Uuid, buyer: &str, additional: i64) -> Result<Reservation, ApiError> {
    let mut tx = db.begin().await?;
    let row: Option<(String, DateTime<Utc>, bool)> = sqlx::query_as(
        "SELECT status, expires_at, extended FROM reservations WHERE id = $1 AND buyer_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(buyer)
    .fetch_optional(&mut *tx)
    .await?;
    let (status, expires_at, extended) = row.ok_or_else(|| ApiError::not_found("reservation"))?;
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
    sqlx::query("UPDATE reservations SET expires_at = $2, extended = true, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(new_expiry)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE inventory SET held_until = $2, version = version + 1 WHERE hold_id = $1 AND status = 'HELD'",
    )
    .bind(id)
    .bind(new_expiry)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    load(db, id, buyer).await?.ok_or_else(|| ApiError::not_found("reservation"))
}

/// Expires lapsed holds every `interval`, so counts and seat maps stay
/// fresh. Correctness never depends on it: holds check `held_until` themselves.
pub async fn run_sweeper(
    db: PgPool,
    interval: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::workers::every(interval, stop, || async {
        let swept = async {
            let mut tx = db.begin().await?;
            let n = expire_lapsed(&mut tx, None).await?;
            tx.commit().await?;
            crate::access::forget_expired_sessions(&db).await?;
            Ok::<_, sqlx::Error>(n)
        };
        match swept.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "released lapsed holds"),
            Err(e) => tracing::warn!(error = %e, "hold sweeper failed"),
        }
    })
    .await;
}

async fn post_hold(
    State(state): State<AppState>,
    checkout: Checkout<EventId>,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<(StatusCode, ApiJson<Reservation>), ApiError> {
    let buyer = checkout.buyer()?;
    let answer = match hold(&state.db, checkout.event, buyer, body).await {
        Ok((reservation, created)) => {
            Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, ApiJson(reservation)))
        }
        Err(e) => Err(ApiError::from(e)),
    };
    state.metrics.observe(answer, |(status, _)| *status, Outcome::of_hold)
}

async fn get_reservation(
    State(state): State<AppState>,
    checkout: Checkout<ReservationId>,
) -> Result<ApiJson<Reservation>, ApiError> {
    load(&state.db, checkout.target.0, checkout.buyer()?)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("reservation"))
}

async fn delete_reservation(
    State(state): State<AppState>,
    checkout: Checkout<ReservationId>,
) -> Result<impl IntoResponse, ApiError> {
    release(&state.db, checkout.target.0, checkout.buyer()?).await?;
    Ok((checkout.end_session(&state.db).await?, StatusCode::NO_CONTENT))
}

async fn patch_extend(
    State(state): State<AppState>,
    checkout: Checkout<ReservationId>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<ApiJson<Reservation>, ApiError> {
    Ok(ApiJson(extend(&state.db, checkout.target.0, checkout.buyer()?, body.additional_seconds).await?))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events/{id}/reservations", post(post_hold))
        .route("/api/v1/reservations/{id}", get(get_reservation).merge(delete(delete_reservation)))
        .route("/api/v1/reservations/{id}/extend", patch(patch_extend))
}
