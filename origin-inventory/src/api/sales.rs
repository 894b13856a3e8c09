//! The organizer's view of sales: a summary per event and refunds.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth::Organizer;
use crate::api::openapi::OrganizerRefusals;
use crate::error::{ApiError, ApiJson, ApiPath, Problem};
use crate::orders::{OrderStatus, OrderView, load_order};
use crate::outbox::notify;
use crate::state::AppState;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
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
    pub sections: sqlx::types::Json<Vec<SectionSales>>,
    /// The last 30 minutes, the minutes with orders.
    #[schema(value_type = Vec<MinuteSales>)]
    pub per_minute: sqlx::types::Json<Vec<MinuteSales>>,
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

/// An event's sales: orders, revenue, seats by state and per section, and
/// orders per minute over the last 30 minutes.
#[utoipa::path(get, path = "/api/v1/organizer/events/{id}/sales", tag = "organizer", security(("organizerKey" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, body = SalesSummary),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    OrganizerRefusals,
))]
async fn get_sales(
    State(state): State<AppState>,
    Organizer(organizer): Organizer,
    ApiPath(event): ApiPath<Uuid>,
) -> Result<ApiJson<SalesSummary>, ApiError> {
    sqlx::query_as(
        "SELECT e.id AS event_id,
                (SELECT count(*) FROM orders o WHERE o.event_id = e.id AND o.status = 'paid') AS orders,
                (SELECT count(*) FROM orders o WHERE o.event_id = e.id AND o.status = 'refunded') AS refunded_orders,
                (SELECT count(*) FROM tickets t WHERE t.event_id = e.id AND NOT t.voided) AS tickets_sold,
                (SELECT coalesce(sum(total_cents), 0)::bigint FROM orders o WHERE o.event_id = e.id AND o.status = 'paid')
                    AS revenue_cents,
                (SELECT min(t.currency) FROM price_tiers t WHERE t.venue_id = e.venue_id) AS currency,
                inv.total AS seats_total, inv.available AS seats_available, inv.held AS seats_held,
                inv.booked AS seats_booked, inv.blocked AS seats_blocked,
                (SELECT coalesce(json_agg(json_build_object(
                            'section_id', s.id, 'name', s.name, 'total', s.total, 'available', s.available,
                            'held', s.held, 'booked', s.booked) ORDER BY s.position), '[]')
                 FROM (SELECT sec.id, sec.name, sec.position, count(*) AS total,
                              count(*) FILTER (WHERE seat_is_free(i.status, i.held_until)) AS available,
                              count(*) FILTER (WHERE i.status = 'HELD' AND i.held_until >= now()) AS held,
                              count(*) FILTER (WHERE i.status = 'BOOKED') AS booked
                       FROM inventory i JOIN sections sec ON sec.id = i.section_id
                       WHERE i.event_id = e.id GROUP BY sec.id) s) AS sections,
                (SELECT coalesce(json_agg(json_build_object(
                            'minute', m.minute, 'orders', m.orders, 'tickets', m.tickets,
                            'revenue_cents', m.revenue_cents) ORDER BY m.minute), '[]')
                 FROM (SELECT date_trunc('minute', o.created_at) AS minute, count(*) AS orders,
                              sum((SELECT count(*) FROM tickets t WHERE t.order_id = o.id)) AS tickets,
                              sum(o.total_cents)::bigint AS revenue_cents
                       FROM orders o
                       WHERE o.event_id = e.id AND o.status = 'paid' AND o.created_at > now() - interval '30 minutes'
                       GROUP BY 1) m) AS per_minute
         FROM events e CROSS JOIN LATERAL (
             SELECT count(*) AS total,
                    count(*) FILTER (WHERE seat_is_free(status, held_until)) AS available,
                    count(*) FILTER (WHERE status = 'HELD' AND held_until >= now()) AS held,
                    count(*) FILTER (WHERE status = 'BOOKED') AS booked,
                    count(*) FILTER (WHERE status = 'BLOCKED') AS blocked
             FROM inventory WHERE event_id = e.id) inv
         WHERE e.id = $1 AND e.organizer_id = $2",
    )
    .bind(event)
    .bind(organizer)
    .fetch_optional(&state.db)
    .await?
    .map(ApiJson)
    .ok_or_else(|| ApiError::not_found("event"))
}

/// Refund an order in full and put its seats back on sale.
#[utoipa::path(post, path = "/api/v1/organizer/orders/{number}/refund", tag = "organizer",
    security(("organizerKey" = [])), params(("number" = String, Path)), responses(
    (status = 200, body = OrderView, description = "The refunded order"),
    (status = 404, body = Problem, description = "Unknown, or another organizer's"),
    (status = 409, body = Problem, description = "`already_refunded`"),
    (status = 502, body = Problem, description = "`refund_failed`: the payment provider refused; nothing changed"),
    OrganizerRefusals,
))]
async fn post_refund(
    State(state): State<AppState>,
    Organizer(organizer): Organizer,
    ApiPath(number): ApiPath<String>,
) -> Result<ApiJson<OrderView>, ApiError> {
    let found: Option<(Uuid, Uuid, OrderStatus, Option<String>, String, String)> = sqlx::query_as(
        "SELECT o.id, o.payment_id, o.status, p.provider_payment_id, o.buyer_email, o.buyer_name
         FROM orders o JOIN events e ON e.id = o.event_id JOIN payments p ON p.id = o.payment_id
         WHERE o.order_number = $1 AND e.organizer_id = $2",
    )
    .bind(&number)
    .bind(organizer)
    .fetch_optional(&state.db)
    .await?;
    let (order, payment, status, provider_id, email, name) =
        found.ok_or_else(|| ApiError::not_found("order"))?;
    if status != OrderStatus::Paid {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_refunded",
            "this order was already refunded",
        ));
    }
    let provider_id =
        provider_id.ok_or_else(|| ApiError::internal("a paid order without a provider payment"))?;
    // The provider deduplicates on this key, so a retried refund refunds once.
    state.payments.provider.refund(&provider_id, &format!("refund-order-{order}")).await.map_err(|e| {
        tracing::warn!(%order, error = %e, "refund failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "refund_failed",
            "the payment provider did not confirm the refund; retry",
        )
    })?;

    let mut tx = state.db.begin().await?;
    let changed = sqlx::query("UPDATE orders SET status = 'refunded' WHERE id = $1 AND status = 'paid'")
        .bind(order)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() == 1 {
        let seats: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "UPDATE tickets t SET voided = true FROM orders o
             WHERE t.order_id = $1 AND o.id = t.order_id AND NOT t.voided
             RETURNING t.seat_id, t.event_id, o.buyer_id",
        )
        .bind(order)
        .fetch_all(&mut *tx)
        .await?;
        if let Some((_, event, buyer)) = seats.first() {
            sqlx::query(
                "UPDATE inventory SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = version + 1
                 WHERE event_id = $1 AND seat_id = ANY($2) AND status = 'BOOKED'",
            )
            .bind(event)
            .bind(seats.iter().map(|(seat, _, _)| *seat).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE buyer_tickets SET tickets = tickets - $3 WHERE event_id = $1 AND buyer_id = $2",
            )
            .bind(event)
            .bind(buyer)
            .bind(seats.len() as i32)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE payments SET status = 'refunded', updated_at = now() WHERE id = $1")
                .bind(payment)
                .execute(&mut *tx)
                .await?;
            notify(
                &mut tx,
                "email.order_refunded",
                json!({"to": email, "name": name, "order_number": number}),
            )
            .await?;
            notify(&mut tx, "webhook.order.refunded", json!({"event_id": event, "order_number": number}))
                .await?;
        }
    }
    let view = load_order(&mut tx, &number).await?.ok_or_else(|| ApiError::not_found("order"))?;
    tx.commit().await?;
    Ok(ApiJson(view))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_sales)).routes(routes!(post_refund))
}
