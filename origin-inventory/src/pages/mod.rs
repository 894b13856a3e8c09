//! The buyer's pages, served by the origin behind the edge's gatekeeper:
//! the checkout page (seat map as SVG, hold, payment) and the order page
//! (tickets with QR codes). Server-rendered HTML with an inline script and
//! no external assets; the script talks to the same JSON API apps use.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use edge_core::catalog::local_time;
use edge_core::html::{escape, page, page_with_head};

use crate::access::{Checkout, EventId};
use crate::app::AppState;
use crate::buyers::session_cookie;
use crate::catalog::{self, SeatRow};
use crate::checkout::{OrderView, readable_order};
use crate::error::{ApiError, ApiPath};
use crate::tickets::qr_svg;

/// The sandbox's test cards, offered in local mode.
const TEST_CARDS: &[(&str, &str)] = &[
    ("pm_card_visa", "Visa — succeeds"),
    ("pm_card_mastercard", "Mastercard — succeeds"),
    ("pm_card_chargeDeclined", "Declined card"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Declined — insufficient funds"),
];

const SCRIPT: &str = include_str!("checkout.js");
const STYLE: &str = include_str!("checkout.css");

/// Seat fill per price tier, in the order tiers first appear.
const TIER_COLOURS: &[&str] = &["#4338ca", "#0e7490", "#a21caf", "#b45309", "#15803d", "#be123c"];
const UNAVAILABLE: &str = "#c8c8cc";
const SEAT_PITCH: usize = 18;
const LABEL_WIDTH: usize = 70;
const SEATS_PER_LINE: usize = 30;

#[derive(sqlx::FromRow)]
struct Limits {
    max_tickets_per_order: i32,
}

async fn checkout_page(
    State(state): State<AppState>,
    checkout: Result<Checkout<EventId>, ApiError>,
) -> Result<Response, ApiError> {
    let checkout = match checkout {
        Err(e) if e.status() == StatusCode::NOT_FOUND => return Ok(not_found_page("event")),
        checkout => checkout?,
    };
    let event_id = checkout.event;
    let Some(event) = catalog::find_event(&state.db, event_id).await? else {
        return Ok(not_found_page("event"));
    };
    let seats = catalog::seats(&state.db, event_id).await?;
    let limits: Limits = sqlx::query_as("SELECT max_tickets_per_order FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_one(&state.db)
        .await?;
    let text = |value: &serde_json::Value| escape(value.as_str().unwrap_or_default());
    let currency = event["price_range"]["currency"].as_str().unwrap_or("EUR").to_owned();
    let tiers = tiers(&seats);
    let legend: String = tiers
        .iter()
        .enumerate()
        .map(|(i, (tier, cents))| {
            format!(
                "<li><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><circle cx=\"7\" cy=\"7\" r=\"6\" fill=\"{}\"/></svg> {} · {}</li>",
                TIER_COLOURS[i % TIER_COLOURS.len()],
                escape(tier),
                money(*cents, &currency)
            )
        })
        .collect();
    let sections: String = seats
        .chunk_by(|a, b| a.section_id == b.section_id)
        .map(|s| format!("<option value=\"{}\">{}</option>", s[0].section_id, escape(&s[0].section)))
        .collect();
    let payment = if state.payments.provider.name() == "sandbox" {
        let cards: String =
            TEST_CARDS.iter().map(|(id, label)| format!("<option value=\"{id}\">{label}</option>")).collect();
        format!("<label>Test card <select name=\"payment_method_id\">{cards}</select></label>")
    } else {
        "<label>Payment method id <input name=\"payment_method_id\" required placeholder=\"pm_…\"></label>"
            .into()
    };
    let config = serde_json::json!({
        "event": event_id,
        "limit": limits.max_tickets_per_order,
        "currency": currency,
    });
    let body = format!(
        "<h1>{title}</h1><p class=\"muted\">{venue}, {city} · {starts}</p>\
         <section class=\"card\" aria-labelledby=\"map-title\"><h2 id=\"map-title\">Choose your seats</h2>\
         <ul class=\"legend\" aria-label=\"Price tiers\">{legend}<li><svg width=\"14\" height=\"14\" aria-hidden=\"true\">\
         <circle cx=\"7\" cy=\"7\" r=\"6\" fill=\"{UNAVAILABLE}\"/></svg> Unavailable</li></ul>\
         {map}\
         <p id=\"selection\" aria-live=\"polite\">No seats selected. Pick up to {limit} seats with the mouse, \
         or with Tab and Space.</p>\
         <p><button id=\"hold-selected\" disabled>Hold selected seats</button></p>\
         <form id=\"best\"><fieldset><legend>Best available</legend>\
         <label>Seats <input type=\"number\" name=\"quantity\" min=\"1\" value=\"2\" required></label>\
         <label>Section <select name=\"section_id\">{sections}</select></label>\
         <button type=\"submit\">Find seats</button></fieldset></form>\
         <p id=\"problem\" class=\"problem\" role=\"alert\"></p></section>\
         <section id=\"hold\" class=\"card\" aria-labelledby=\"hold-title\" hidden>\
         <h2 id=\"hold-title\" tabindex=\"-1\">Your seats are held</h2><ul id=\"held\"></ul>\
         <p>Total <strong id=\"total\"></strong> · held for <strong id=\"countdown\" aria-live=\"off\"></strong></p>\
         <p><button id=\"extend\">Extend hold</button> <button id=\"release\">Release seats</button></p>\
         <form id=\"pay\"><fieldset><legend>Payment</legend>\
         <label>Name <input name=\"name\" required autocomplete=\"name\"></label>\
         <label>Email <input type=\"email\" name=\"email\" required autocomplete=\"email\"></label>\
         {payment}<button type=\"submit\">Pay</button></fieldset></form></section>\
         <script type=\"application/json\" id=\"checkout-config\">{config}</script><script>{SCRIPT}</script>",
        title = text(&event["title"]),
        venue = text(&event["venue"]["name"]),
        city = text(&event["venue"]["city"]),
        starts = escape(&starts_at(&event)),
        map = seat_map_svg(&seats, &tiers, &currency),
        limit = limits.max_tickets_per_order,
    );
    let title = format!("Choose seats: {}", event["title"].as_str().unwrap_or_default());
    let mut page = no_store(Html(page_with_head(&title, &format!("<style>{STYLE}</style>"), &body)));
    // Without a queue, the browser's buyer session names the buyer: give
    // it one on its first visit.
    if checkout.buyer().is_err() {
        let session = state.buyers.issue(chrono::Utc::now().timestamp());
        page.headers_mut().append(header::SET_COOKIE, session_cookie(&session));
    }
    Ok(page)
}

/// When the event starts, in its venue's time zone.
fn starts_at(event: &serde_json::Value) -> String {
    let timezone = event["venue"]["timezone"].as_str().unwrap_or("UTC");
    match event["starts_at"].as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(at)) => local_time(at.with_timezone(&Utc), timezone),
        _ => String::new(),
    }
}

/// Tiers in order of appearance with their price.
fn tiers(seats: &[SeatRow]) -> Vec<(String, i64)> {
    let mut tiers: Vec<(String, i64)> = Vec::new();
    for seat in seats {
        if !tiers.iter().any(|(name, _)| *name == seat.tier) {
            tiers.push((seat.tier.clone(), seat.price_cents));
        }
    }
    tiers
}

/// Sections stacked, one line per row; each free seat is a focusable
/// checkbox the script toggles.
fn seat_map_svg(seats: &[SeatRow], tiers: &[(String, i64)], currency: &str) -> String {
    let mut out = String::new();
    let mut y = 0;
    let widest = seats
        .chunk_by(|a, b| a.section_id == b.section_id && a.row_label == b.row_label)
        .map(|row| row.len().min(SEATS_PER_LINE))
        .max()
        .unwrap_or(0);
    for section in seats.chunk_by(|a, b| a.section_id == b.section_id) {
        y += 22;
        out.push_str(&format!(
            "<text x=\"0\" y=\"{y}\" class=\"section\">{}</text>",
            escape(&section[0].section)
        ));
        for row in section.chunk_by(|a, b| a.row_label == b.row_label) {
            // A long row (a standing area is one) wraps onto several lines.
            for (line, places) in row.chunks(SEATS_PER_LINE).enumerate() {
                y += SEAT_PITCH;
                let label =
                    if section[0].general_admission || line > 0 { "" } else { row[0].row_label.as_str() };
                out.push_str(&format!(
                    "<text x=\"0\" y=\"{}\" class=\"row\">{}</text>",
                    y + 4,
                    escape(label)
                ));
                for (i, seat) in places.iter().enumerate() {
                    out.push_str(&seat_svg(seat, LABEL_WIDTH + i * SEAT_PITCH, y, tiers, currency));
                }
            }
        }
        y += 8;
    }
    format!(
        "<div class=\"map\"><svg id=\"seat-map\" role=\"group\" aria-label=\"Seat map\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\">{out}</svg></div>",
        w = LABEL_WIDTH + widest * SEAT_PITCH,
        h = y + 10
    )
}

fn seat_svg(seat: &SeatRow, x: usize, y: usize, tiers: &[(String, i64)], currency: &str) -> String {
    let tier = tiers.iter().position(|(name, _)| *name == seat.tier).unwrap_or(0);
    let colour = TIER_COLOURS[tier % TIER_COLOURS.len()];
    let place = if seat.general_admission {
        format!("{}, standing place {}", seat.section, seat.number)
    } else {
        format!("{}, row {}, seat {}", seat.section, seat.row_label, seat.number)
    };
    let free = seat.status == "AVAILABLE";
    let label = format!(
        "{place}, {}, {}{}",
        seat.tier,
        money(seat.price_cents, currency),
        if free { "" } else { ", unavailable" }
    );
    let focus = if free { "tabindex=\"0\" aria-checked=\"false\"" } else { "aria-disabled=\"true\"" };
    format!(
        "<circle class=\"seat\" cx=\"{x}\" cy=\"{y}\" r=\"7\" role=\"checkbox\" {focus} data-seat=\"{id}\" \
         data-status=\"{status}\" data-colour=\"{colour}\" data-place=\"{place}\" fill=\"{fill}\" \
         aria-label=\"{label}\"><title>{label}</title></circle>",
        id = seat.id,
        status = escape(&seat.status),
        place = escape(&place),
        fill = if free { colour } else { UNAVAILABLE },
        label = escape(&label),
    )
}

fn money(cents: i64, currency: &str) -> String {
    format!("{currency} {}.{:02}", cents / 100, cents % 100)
}

/// `GET /orders/{number}`: the buyer's own order with every ticket's QR code.
async fn order_page(
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    order_page_for(&state, &number, None, &headers).await
}

/// `GET /orders/{number}/{secret}`: the order behind its secret link, from
/// any browser, without the waiting room.
async fn order_link_page(
    State(state): State<AppState>,
    ApiPath((number, secret)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    order_page_for(&state, &number, Some(&secret), &headers).await
}

async fn order_page_for(
    state: &AppState,
    number: &str,
    secret: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match readable_order(state, number, secret, headers).await? {
        Some(order) => Ok(no_store(Html(order_html(&order)))),
        None => Ok(not_found_page("order")),
    }
}

fn order_html(order: &OrderView) -> String {
    let tickets: String = order
        .tickets
        .iter()
        .map(|ticket| {
            let seat = &ticket.seat;
            format!(
                "<li class=\"ticket card\"><h3>{section}, row {row}, seat {number}</h3><p>{tier} · {price}</p>\
                 <figure>{qr}<figcaption>Ticket code <code>{code}</code></figcaption></figure></li>",
                section = escape(&seat.section),
                row = escape(&seat.row),
                number = seat.number,
                tier = escape(&seat.tier),
                price = money(seat.price_cents, &order.currency),
                qr = qr_svg(&ticket.code),
                code = escape(&ticket.code),
            )
        })
        .collect();
    let body = format!(
        "<h1>Order {number}</h1><p class=\"muted\">{status} · {created} · total {total}</p>\
         <p>Thank you, {name}. Your tickets are below and on their way to {email}.</p>\
         <ul class=\"tickets\" aria-label=\"Tickets\">{tickets}</ul>",
        number = escape(&order.order_number),
        status = escape(&order.status),
        created = order.created_at.format("%Y-%m-%d %H:%M UTC"),
        total = money(order.total_cents, &order.currency),
        name = escape(&order.name),
        email = escape(&order.email),
    );
    page_with_head(&format!("Order {}", order.order_number), &format!("<style>{STYLE}</style>"), &body)
}

fn not_found_page(what: &str) -> Response {
    let html =
        page("Not found", &format!("<h1>No such {what}</h1><p><a href=\"/events\">All events</a></p>"));
    (StatusCode::NOT_FOUND, Html(html)).into_response()
}

fn no_store(html: Html<String>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], html).into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/checkout", get(checkout_page))
        .route("/events/{id}/checkout/seat-changes", get(crate::live::seat_changes))
        .route("/orders/{number}", get(order_page))
        .route("/orders/{number}/{secret}", get(order_link_page))
}
