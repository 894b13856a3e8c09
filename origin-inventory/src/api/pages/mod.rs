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
use edge_core::html::{notice, page_with_head};
use maud::{Markup, PreEscaped, html};

use crate::api::access::{Checkout, EventId};
use crate::api::openapi::CheckoutRefusals;
use crate::buyers::session_cookie;
use crate::catalog::{self, SeatRow};
use crate::error::{ApiError, ApiPath};
use crate::orders::{OrderView, readable_order};
use crate::payments::TEST_CARDS;
use crate::qr::qr_svg;
use crate::reservations::{SeatStatus, live_hold};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use wire::catalog::Event;
use wire::money::money;

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
    let config = serde_json::json!({
        "event": event_id,
        "limit": limits.max_tickets_per_order,
        "currency": currency,
        "tiers": tiers.iter().enumerate().map(|(i, (name, _))| (name.clone(), TIER_COLOURS[i % TIER_COLOURS.len()].into()))
            .collect::<serde_json::Map<_, _>>(),
        "hold": live_hold,
    });
    let colour = |i: usize| TIER_COLOURS[i % TIER_COLOURS.len()];
    let body = html! {
        h1 { (event.title) }
        p.muted { (event.venue.name) ", " (event.venue.city) " · " (starts_at(&event)) }
        section #overview .card aria-labelledby="sections-title" {
            h2 #sections-title { "Choose a section" }
            ul #sections .sections {
                @for s in &sections {
                    li {
                        button type="button" .section-pick data-section=(s.id) aria-pressed="false" {
                            span.name { (s.name) } " "
                            span.free { span data-free { (s.free) } " of " (s.total) " free" } " "
                            span.from { "from " (money(s.cheapest_cents, &currency)) }
                        }
                    }
                }
            }
        }
        section #section-view .card aria-labelledby="section-title" hidden {
            div.view-head {
                h2 #section-title tabindex="-1" {}
                div.zoom role="group" aria-label="Zoom the seat map" {
                    button type="button" #zoom-out aria-label="Zoom out" { "−" }
                    button type="button" #zoom-in aria-label="Zoom in" { "+" }
                }
            }
            ul.legend aria-label="Seat key" {
                @for (i, (tier, cents)) in tiers.iter().enumerate() {
                    li {
                        svg width="16" height="16" aria-hidden="true" { circle cx="8" cy="8" r="7" fill=(colour(i)) {} }
                        " " (tier) " · " (money(*cents, &currency))
                    }
                }
                li {
                    svg width="16" height="16" aria-hidden="true" {
                        circle.key-selected cx="8" cy="8" r="7" {}
                        path.tick d="M4.5 8.2l2.3 2.3 4.7-4.9" {}
                    }
                    " Your choice"
                }
                li { svg width="16" height="16" aria-hidden="true" { circle.key-taken cx="8" cy="8" r="6" {} } " Taken" }
                li {
                    svg width="16" height="16" aria-hidden="true" {
                        rect.key-access x="1.5" y="1.5" width="13" height="13" rx="3" {}
                    }
                    " Wheelchair space"
                }
            }
            p.muted.hint { "Arrow keys move between seats, Space or Enter picks one." }
            div.map #map-box {
                svg #seat-map role="group" aria-labelledby="section-title" { circle #focus-ring r="15" {} }
            }
        }
        div #action-bar .action-bar role="region" aria-label="Your selection" {
            p #selection aria-live="polite" {}
            div.actions {
                button #hold-selected .primary disabled { "Hold selected seats" }
                form #best {
                    label { "Seats " input type="number" name="quantity" min="1" value="2" required inputmode="numeric"; }
                    label {
                        "Section "
                        select name="section_id" {
                            option value="" { "Most seats free" }
                            @for s in &sections { option value=(s.id) { (s.name) } }
                        }
                    }
                    button type="submit" { "Best available" }
                }
            }
            p #problem .problem role="alert" {}
        }
        section #hold .card aria-labelledby="hold-title" hidden {
            h2 #hold-title tabindex="-1" { "Your seats are held" }
            ul #held {}
            p { "Total " strong #total {} " · held for " strong #countdown aria-live="off" {} }
            p { button #extend { "Extend hold" } " " button #release { "Release seats" } }
            form #pay {
                fieldset {
                    legend { "Payment" }
                    label { "Name " input name="name" required autocomplete="name"; }
                    label { "Email " input type="email" name="email" required autocomplete="email"; }
                    (payment_field(state.payments.provider.name() == "sandbox"))
                    button type="submit" .primary { "Pay" }
                }
                p #pay-problem .problem role="alert" {}
            }
        }
        script type="application/json" id="checkout-config" { (PreEscaped(script_json(&config))) }
        script { (PreEscaped(SCRIPT)) }
    };
    let title = format!("Choose seats: {}", event.title);
    let mut page = no_store(Html(page_with_head(&title, styled(), body)));
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
fn payment_field(sandbox: bool) -> Markup {
    html! {
        @if sandbox {
            label {
                "Test card "
                select name="payment_method_id" {
                    @for card in TEST_CARDS { option value=(card.id) { (card.label) } }
                }
            }
        } @else {
            label { "Payment method id " input name="payment_method_id" required placeholder="pm_…"; }
        }
    }
}

/// The pages' own style sheet, for `<head>`.
fn styled() -> Markup {
    html! { style { (PreEscaped(STYLE)) } }
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
    let detail = |of: fn(&Event) -> &str| event.map_or("", of);
    let body = html! {
        h1 { (detail(|e| &e.title)) }
        p.when { strong { (event.map(starts_at).unwrap_or_default()) } br; (detail(|e| &e.venue.name)) ", " (detail(|e| &e.venue.city)) }
        section.card aria-labelledby="order-title" {
            h2 #order-title { "Order " (order.order_number) }
            p.muted {
                (order.status.as_str()) " · ordered " (local_time(order.created_at, timezone)) " · total "
                (money(order.total_cents, &order.currency))
            }
            p {
                "Thank you, " (order.name) ". Your tickets are below and on their way to " (order.email)
                ". This page's address opens them from any browser: keep it private."
            }
        }
        ul.tickets aria-label="Tickets" {
            @for ticket in &order.tickets {
                li.ticket.card {
                    h3 { (ticket.seat.place()) }
                    p { (ticket.seat.tier) " · " (money(ticket.seat.price_cents, &order.currency)) }
                    figure { (PreEscaped(qr_svg(&ticket.code))) figcaption { "Ticket code " code { (ticket.code) } } }
                }
            }
        }
    };
    page_with_head(&format!("Order {}", order.order_number), styled(), body)
}

fn not_found_page(what: &str) -> Response {
    let html = notice("Not found", &format!("No such {what}"));
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
