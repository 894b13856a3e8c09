//! An event's sales as its organizer sees them: orders, revenue, seats by
//! state and per section, and orders per minute over the last 30 minutes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct SalesSummary {
    pub event_id: Uuid,
    pub orders: i64,
    pub refunded_orders: i64,
    pub tickets_sold: i64,
    pub revenue_cents: i64,
    /// The venue's prices' currency.
    pub currency: Option<String>,
    pub seats_total: i64,
    pub seats_available: i64,
    pub seats_held: i64,
    pub seats_booked: i64,
    pub seats_blocked: i64,
    /// Per section, in venue order.
    #[schema(value_type = Vec<SectionSales>)]
    pub sections: Json<Vec<SectionSales>>,
    /// The last 30 minutes, the minutes with orders.
    #[schema(value_type = Vec<MinuteSales>)]
    pub per_minute: Json<Vec<MinuteSales>>,
}

/// One section's seats.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SectionSales {
    pub section_id: Uuid,
    pub name: String,
    pub total: i64,
    pub available: i64,
    pub held: i64,
    pub booked: i64,
}

/// One minute's orders.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MinuteSales {
    pub minute: DateTime<Utc>,
    pub orders: i64,
    pub tickets: i64,
    pub revenue_cents: i64,
}

/// The summary of one of the organizer's events.
pub async fn summary(db: &PgPool, organizer: Uuid, event: Uuid) -> Result<Option<SalesSummary>, sqlx::Error> {
    sqlx::query_as!(
        SalesSummary,
        r#"SELECT e.id AS event_id,
                (SELECT count(*) FROM orders o WHERE o.event_id = e.id AND o.status = 'paid') AS "orders!",
                (SELECT count(*) FROM orders o WHERE o.event_id = e.id AND o.status = 'refunded') AS "refunded_orders!",
                (SELECT count(*) FROM tickets t WHERE t.event_id = e.id AND NOT t.voided) AS "tickets_sold!",
                (SELECT coalesce(sum(total_cents), 0)::bigint FROM orders o WHERE o.event_id = e.id AND o.status = 'paid')
                    AS "revenue_cents!",
                (SELECT min(t.currency) FROM price_tiers t WHERE t.venue_id = e.venue_id) AS currency,
                inv.total AS "seats_total!", inv.available AS "seats_available!", inv.held AS "seats_held!",
                inv.booked AS "seats_booked!", inv.blocked AS "seats_blocked!",
                (SELECT coalesce(json_agg(json_build_object(
                            'section_id', s.id, 'name', s.name, 'total', s.total, 'available', s.available,
                            'held', s.held, 'booked', s.booked) ORDER BY s.position), '[]')
                 FROM (SELECT sec.id, sec.name, sec.position, count(*) AS total,
                              count(*) FILTER (WHERE seat_is_free(i.status, i.held_until)) AS available,
                              count(*) FILTER (WHERE i.status = 'HELD' AND i.held_until >= now()) AS held,
                              count(*) FILTER (WHERE i.status = 'BOOKED') AS booked
                       FROM inventory i JOIN sections sec ON sec.id = i.section_id
                       WHERE i.event_id = e.id GROUP BY sec.id) s) AS "sections!: Json<Vec<SectionSales>>",
                (SELECT coalesce(json_agg(json_build_object(
                            'minute', m.minute, 'orders', m.orders, 'tickets', m.tickets,
                            'revenue_cents', m.revenue_cents) ORDER BY m.minute), '[]')
                 FROM (SELECT date_trunc('minute', o.created_at) AS minute, count(*) AS orders,
                              sum((SELECT count(*) FROM tickets t WHERE t.order_id = o.id)) AS tickets,
                              sum(o.total_cents)::bigint AS revenue_cents
                       FROM orders o
                       WHERE o.event_id = e.id AND o.status = 'paid' AND o.created_at > now() - interval '30 minutes'
                       GROUP BY 1) m) AS "per_minute!: Json<Vec<MinuteSales>>"
         FROM events e CROSS JOIN LATERAL (
             SELECT count(*) AS total,
                    count(*) FILTER (WHERE seat_is_free(status, held_until)) AS available,
                    count(*) FILTER (WHERE status = 'HELD' AND held_until >= now()) AS held,
                    count(*) FILTER (WHERE status = 'BOOKED') AS booked,
                    count(*) FILTER (WHERE status = 'BLOCKED') AS blocked
             FROM inventory WHERE event_id = e.id) inv
         WHERE e.id = $1 AND e.organizer_id = $2"#,
        event,
        organizer,
    )
    .fetch_optional(db)
    .await
}
