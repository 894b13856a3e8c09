//! The pages the origin serves: the buyer's checkout page (an overview of
//! sections, one section's seats drawn from the seat-map API, hold,
//! payment) and order page (tickets with QR codes), behind the edge's
//! gatekeeper, and the organizer's pages ([`organizer`]). Server-rendered
//! HTML with inline scripts and no external assets; the scripts talk to
//! the same JSON API apps use.

mod organizer;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use edge_core::catalog::local_time;
use edge_core::html::{escape, page, page_with_head};

use crate::api::access::{Checkout, EventId};
use crate::api::openapi::CheckoutRefusals;
use crate::buyers::session_cookie;
use crate::catalog::{self, SeatRow};
use crate::display::money;
use crate::error::{ApiError, ApiPath};
use crate::orders::{OrderView, readable_order};
use crate::payments::TEST_CARDS;
use crate::reservations::{SeatStatus, live_hold};
use crate::state::AppState;
use crate::tickets::qr_svg;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use wire::catalog::Event;

const SCRIPT: &str = include_str!("checkout.js");
const STYLE: &str = include_str!("checkout.css");

/// Seat fill per price tier, in the order tiers first appear; each is at
/// least 4.5:1 against the page's white.
const TIER_COLOURS: &[&str] = &["#4338ca", "#0e7490", "#a21caf", "#b45309", "#15803d", "#be123c"];

/// One section of the overview: how much is free and from what price.
struct SectionSummary<'a> {
    id: Uuid,
    name: &'a str,
    free: usize,
    total: usize,
    cheapest_cents: i64,
}

fn section_summaries(seats: &[SeatRow]) -> Vec<SectionSummary<'_>> {
    seats
        .chunk_by(|a, b| a.section_id == b.section_id)
        .map(|section| SectionSummary {
            id: section[0].section_id,
            name: &section[0].section,
            free: section.iter().filter(|s| s.status == SeatStatus::Available).count(),
            total: section.len(),
            cheapest_cents: section.iter().map(|s| s.price_cents).min().unwrap_or(0),
        })
        .collect()
}

/// `GET /events/{id}/checkout`: an overview of sections with what is free
/// in each; a section opens as a seat map drawn by the script from the
/// seat-map API (so the page stays small at arena scale). The buyer's live
/// hold, if any, comes with the page: a reload or a second tab shows it.
#[utoipa::path(get, path = "/events/{id}/checkout", tag = "pages", security(("accessToken" = []), ("buyerSession" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, content_type = "text/html", description = "The page; on events without a queue it also starts a buyer session (`Set-Cookie`)"),
    (status = 404, content_type = "text/html", description = "No such event"),
    CheckoutRefusals,
))]
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
    let limits = sqlx::query!("SELECT max_tickets_per_order FROM events WHERE id = $1", event_id)
        .fetch_one(&state.db)
        .await?;
    let live_hold = match checkout.buyer() {
        Ok(buyer) => live_hold(&state.db, event_id, buyer).await?,
        Err(_) => None,
    };
    let currency = event.price_range.currency.clone().unwrap_or_else(|| "EUR".into());
    let tiers = tiers(&seats);
    let sections = section_summaries(&seats);
    let overview: String = sections
        .iter()
        .map(|s| {
            format!(
                "<li><button type=\"button\" class=\"section-pick\" data-section=\"{id}\" aria-pressed=\"false\">\
                 <span class=\"name\">{name}</span> <span class=\"free\"><span data-free>{free}</span> of {total} free</span> \
                 <span class=\"from\">from {from}</span></button></li>",
                id = s.id,
                name = escape(s.name),
                free = s.free,
                total = s.total,
                from = money(s.cheapest_cents, &currency),
            )
        })
        .collect();
    let section_options: String =
        sections.iter().map(|s| format!("<option value=\"{}\">{}</option>", s.id, escape(s.name))).collect();
    let legend: String = tiers
        .iter()
        .enumerate()
        .map(|(i, (tier, cents))| {
            format!(
                "<li><svg width=\"16\" height=\"16\" aria-hidden=\"true\"><circle cx=\"8\" cy=\"8\" r=\"7\" \
                 fill=\"{}\"/></svg> {} · {}</li>",
                TIER_COLOURS[i % TIER_COLOURS.len()],
                escape(tier),
                money(*cents, &currency)
            )
        })
        .collect();
    let config = serde_json::json!({
        "event": event_id,
        "limit": limits.max_tickets_per_order,
        "currency": currency,
        "tiers": tiers.iter().enumerate().map(|(i, (name, _))| (name.clone(), TIER_COLOURS[i % TIER_COLOURS.len()].into()))
            .collect::<serde_json::Map<_, _>>(),
        "hold": live_hold,
    });
    let body = format!(
        "<h1>{title}</h1><p class=\"muted\">{venue}, {city} · {starts}</p>\
         <section id=\"overview\" class=\"card\" aria-labelledby=\"sections-title\"><h2 id=\"sections-title\">Choose a section</h2>\
         <ul id=\"sections\" class=\"sections\">{overview}</ul></section>\
         <section id=\"section-view\" class=\"card\" aria-labelledby=\"section-title\" hidden>\
         <div class=\"view-head\"><h2 id=\"section-title\" tabindex=\"-1\"></h2>\
         <div class=\"zoom\" role=\"group\" aria-label=\"Zoom the seat map\">\
         <button type=\"button\" id=\"zoom-out\" aria-label=\"Zoom out\">−</button>\
         <button type=\"button\" id=\"zoom-in\" aria-label=\"Zoom in\">+</button></div></div>\
         <ul class=\"legend\" aria-label=\"Seat key\">{legend}\
         <li><svg width=\"16\" height=\"16\" aria-hidden=\"true\"><circle class=\"key-selected\" cx=\"8\" cy=\"8\" r=\"7\"/>\
         <path class=\"tick\" d=\"M4.5 8.2l2.3 2.3 4.7-4.9\"/></svg> Your choice</li>\
         <li><svg width=\"16\" height=\"16\" aria-hidden=\"true\"><circle class=\"key-taken\" cx=\"8\" cy=\"8\" r=\"6\"/></svg> Taken</li>\
         <li><svg width=\"16\" height=\"16\" aria-hidden=\"true\"><rect class=\"key-access\" x=\"1.5\" y=\"1.5\" width=\"13\" \
         height=\"13\" rx=\"3\"/></svg> Wheelchair space</li></ul>\
         <p class=\"muted hint\">Arrow keys move between seats, Space or Enter picks one.</p>\
         <div class=\"map\" id=\"map-box\"><svg id=\"seat-map\" role=\"group\" aria-labelledby=\"section-title\">\
         <circle id=\"focus-ring\" r=\"15\"/></svg></div>\
         </section>\
         <div id=\"action-bar\" class=\"action-bar\" role=\"region\" aria-label=\"Your selection\">\
         <p id=\"selection\" aria-live=\"polite\"></p>\
         <div class=\"actions\"><button id=\"hold-selected\" class=\"primary\" disabled>Hold selected seats</button>\
         <form id=\"best\"><label>Seats <input type=\"number\" name=\"quantity\" min=\"1\" value=\"2\" required \
         inputmode=\"numeric\"></label><label>Section <select name=\"section_id\">\
         <option value=\"\">Most seats free</option>{section_options}</select></label>\
         <button type=\"submit\">Best available</button></form></div>\
         <p id=\"problem\" class=\"problem\" role=\"alert\"></p></div>\
         <section id=\"hold\" class=\"card\" aria-labelledby=\"hold-title\" hidden>\
         <h2 id=\"hold-title\" tabindex=\"-1\">Your seats are held</h2><ul id=\"held\"></ul>\
         <p>Total <strong id=\"total\"></strong> · held for <strong id=\"countdown\" aria-live=\"off\"></strong></p>\
         <p><button id=\"extend\">Extend hold</button> <button id=\"release\">Release seats</button></p>\
         <form id=\"pay\"><fieldset><legend>Payment</legend>\
         <label>Name <input name=\"name\" required autocomplete=\"name\"></label>\
         <label>Email <input type=\"email\" name=\"email\" required autocomplete=\"email\"></label>\
         {payment}<button type=\"submit\" class=\"primary\">Pay</button></fieldset>\
         <p id=\"pay-problem\" class=\"problem\" role=\"alert\"></p></form></section>\
         <script type=\"application/json\" id=\"checkout-config\">{config}</script><script>{SCRIPT}</script>",
        title = escape(&event.title),
        venue = escape(&event.venue.name),
        city = escape(&event.venue.city),
        starts = escape(&starts_at(&event)),
        payment = payment_field(state.payments.provider.name() == "sandbox"),
        config = script_json(&config),
    );
    let title = format!("Choose seats: {}", event.title);
    let mut page = no_store(Html(page_with_head(&title, &format!("<style>{STYLE}</style>"), &body)));
    // Without a queue, the browser's buyer session names the buyer: give
    // it one on its first visit.
    if checkout.buyer().is_err() {
        let session = state.buyers.issue(chrono::Utc::now().timestamp());
        page.headers_mut().append(header::SET_COOKIE, session_cookie(&session));
    }
    Ok(page)
}

/// The card field: the sandbox's test cards in local mode, else a payment
/// method id from the provider's own form.
fn payment_field(sandbox: bool) -> String {
    if sandbox {
        let cards: String = TEST_CARDS
            .iter()
            .map(|card| format!("<option value=\"{}\">{}</option>", card.id, escape(card.label)))
            .collect();
        format!("<label>Test card <select name=\"payment_method_id\">{cards}</select></label>")
    } else {
        "<label>Payment method id <input name=\"payment_method_id\" required placeholder=\"pm_…\"></label>"
            .into()
    }
}

/// JSON for an inline `<script type="application/json">`: `<` is escaped so
/// no value can close the element.
fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// When the event starts, in its venue's time zone.
fn starts_at(event: &Event) -> String {
    local_time(event.starts_at, &event.venue.timezone)
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

/// `GET /orders/{number}`: the buyer's own order with every ticket's QR code.
#[utoipa::path(get, path = "/orders/{number}", tag = "pages", security(("accessToken" = []), ("buyerSession" = [])),
    params(("number" = String, Path)), responses(
    (status = 200, content_type = "text/html", description = "The order with its tickets' QR codes"),
    (status = 404, content_type = "text/html", description = "Unknown, or not yours"),
))]
async fn order_page(
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    order_page_for(&state, &number, None, &headers).await
}

/// `GET /orders/{number}/{secret}`: the order behind its secret link, from
/// any browser, without the waiting room.
#[utoipa::path(get, path = "/orders/{number}/{secret}", tag = "pages", params(("number" = String, Path), ("secret" = String, Path)),
    responses(
    (status = 200, content_type = "text/html", description = "The order with its tickets' QR codes"),
    (status = 404, content_type = "text/html", description = "Unknown order or wrong secret"),
))]
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
    let Some(order) =
        readable_order(&state.db, &state.buyers, &state.access, number, secret, headers).await?
    else {
        return Ok(not_found_page("order"));
    };
    let event = catalog::find_event(&state.db, order.event_id).await?;
    Ok(no_store(Html(order_html(&order, event.as_ref()))))
}

/// The order as its buyer keeps it: what, where and when (in the venue's
/// time zone), then a ticket per seat with its QR code.
/// An event no longer public (cancelled) shows without its details.
fn order_html(order: &OrderView, event: Option<&Event>) -> String {
    let timezone = event.map_or("UTC", |e| e.venue.timezone.as_str());
    let detail = |of: fn(&Event) -> &str| escape(event.map_or("", of));
    let tickets: String = order
        .tickets
        .iter()
        .map(|ticket| {
            let seat = &ticket.seat;
            format!(
                "<li class=\"ticket card\"><h3>{place}</h3><p>{tier} · {price}</p>\
                 <figure>{qr}<figcaption>Ticket code <code>{code}</code></figcaption></figure></li>",
                place = escape(&seat.place()),
                tier = escape(&seat.tier),
                price = money(seat.price_cents, &order.currency),
                qr = qr_svg(&ticket.code),
                code = escape(&ticket.code),
            )
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1><p class=\"when\"><strong>{starts}</strong><br>{venue}, {city}</p>\
         <section class=\"card\" aria-labelledby=\"order-title\"><h2 id=\"order-title\">Order {number}</h2>\
         <p class=\"muted\">{status} · ordered {created} · total {total}</p>\
         <p>Thank you, {name}. Your tickets are below and on their way to {email}. This page's address opens them \
         from any browser: keep it private.</p></section>\
         <ul class=\"tickets\" aria-label=\"Tickets\">{tickets}</ul>",
        title = detail(|e| &e.title),
        starts = escape(&event.map(starts_at).unwrap_or_default()),
        venue = detail(|e| &e.venue.name),
        city = detail(|e| &e.venue.city),
        number = escape(&order.order_number),
        status = order.status.as_str(),
        created = escape(&local_time(order.created_at, timezone)),
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

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout_page))
        .routes(routes!(crate::api::live::seat_changes))
        .routes(routes!(order_page))
        .routes(routes!(order_link_page))
        .merge(organizer::routes())
}
