//! Orders as buyers and pages see them, and who may see one.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{AccessKeys, verified_subject};
use crate::buyers::BuyerSessions;
use crate::error::ApiError;
use crate::reservations::HeldSeat;

/// Where an order stands (`orders.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum OrderStatus {
    Paid,
    Refunded,
}

impl OrderStatus {
    /// As the order page shows it (the same word as in the API).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    #[serde(flatten)]
    pub seat: HeldSeat,
    pub code: String,
    /// Where the QR code of `code` is drawn.
    pub qr_svg_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    #[serde(skip)]
    pub id: Uuid,
    pub order_number: String,
    pub status: OrderStatus,
    pub event_id: Uuid,
    pub reservation_id: Uuid,
    pub buyer_id: String,
    pub name: String,
    pub email: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    /// Opens the order from any browser, forever: keep it private.
    pub order_url: String,
    #[serde(skip)]
    pub secret: String,
    pub tickets: Vec<TicketView>,
}

pub async fn load_order(db: &mut PgConnection, number: &str) -> Result<Option<OrderView>, sqlx::Error> {
    let order = sqlx::query!(
        r#"SELECT id, order_number, status AS "status: OrderStatus", event_id, reservation_id, buyer_id, buyer_name,
                  buyer_email, total_cents, currency, created_at, secret
           FROM orders WHERE order_number = $1"#,
        number,
    )
    .fetch_optional(&mut *db)
    .await?;
    let Some(order) = order else { return Ok(None) };
    // Migration 0011: each seat's own description.
    let tickets = sqlx::query!(
        r#"SELECT t.id, s.shown || jsonb_build_object('seat_id', t.seat_id, 'price_cents', t.price_cents)
                      AS "seat!: Json<HeldSeat>",
                  t.code
           FROM tickets t JOIN seats s ON s.id = t.seat_id
           WHERE t.order_id = $1 ORDER BY s.shown_order"#,
        order.id,
    )
    .fetch_all(&mut *db)
    .await?;
    let tickets = tickets
        .into_iter()
        .map(|t| TicketView {
            ticket_id: t.id,
            seat: t.seat.0,
            qr_svg_url: qr_svg_url(&t.code),
            code: t.code,
        })
        .collect();
    Ok(Some(OrderView {
        id: order.id,
        order_url: order_url(&order.order_number, &order.secret),
        order_number: order.order_number,
        status: order.status,
        event_id: order.event_id,
        reservation_id: order.reservation_id,
        buyer_id: order.buyer_id,
        name: order.buyer_name,
        email: order.buyer_email,
        total_cents: order.total_cents,
        currency: order.currency,
        created_at: order.created_at,
        secret: order.secret,
        tickets,
    }))
}

/// Where an order opens from any browser.
pub fn order_url(number: &str, secret: &str) -> String {
    format!("/orders/{number}/{secret}")
}

/// Where a ticket's QR code is drawn.
pub fn qr_svg_url(code: &str) -> String {
    format!("/api/v1/tickets/{code}/qr.svg")
}

/// An order for whoever may see it: its buyer (buyer session, or an access
/// token of the order's event naming them, ended or not), or anyone holding
/// its secret link. Anyone else learns nothing, not even that it exists.
pub async fn readable_order(
    db: &PgPool,
    buyers: &BuyerSessions,
    access: &AccessKeys,
    number: &str,
    secret: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<OrderView>, ApiError> {
    let mut db = db.acquire().await?;
    let Some(order) = load_order(&mut db, number).await? else { return Ok(None) };
    let allowed = match secret {
        Some(secret) => same_secret(secret, &order.secret),
        None => {
            let now = Utc::now().timestamp();
            buyers.buyer_of(headers, now).as_deref() == Some(order.buyer_id.as_str())
                || verified_subject(access.verifier(), headers, order.event_id).as_deref()
                    == Some(order.buyer_id.as_str())
        }
    };
    Ok(allowed.then_some(order))
}

/// Whether a ticket with this code exists and is not voided.
pub async fn ticket_is_live(db: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    let live =
        sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM tickets WHERE code = $1 AND NOT voided)", code)
            .fetch_one(db)
            .await?;
    Ok(live.unwrap_or(false))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, actual: &str) -> bool {
    given.len() == actual.len()
        && given.bytes().zip(actual.bytes()).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_page_says_the_status_the_api_does() {
        for status in [OrderStatus::Paid, OrderStatus::Refunded] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
