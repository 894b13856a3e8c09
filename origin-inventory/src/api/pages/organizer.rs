//! The organizer's pages: sign in with the API key, list the events, and
//! watch one on-sale live (queue, admissions against the configured rate,
//! checkout sessions against the cap, sales per minute, seats per section,
//! revenue) with the waiting room's pause and rate controls. The pages
//! carry no data: their script asks the organizer API (and the edge's
//! queue statistics) with the key, which stays in the tab's
//! `sessionStorage`.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use edge_core::html::page_with_head;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiPath;
use crate::state::AppState;

const SCRIPT: &str = include_str!("organizer.js");
const STYLE: &str = include_str!("organizer.css");

/// Signing in: the key is checked by the first API call it makes.
const SIGN_IN: &str = "<section id=\"sign-in\" class=\"card\" hidden><h2>Sign in</h2>\
     <form id=\"sign-in-form\"><label>Organizer API key \
     <input name=\"key\" type=\"password\" autocomplete=\"current-password\" required placeholder=\"sk_…\"></label>\
     <button type=\"submit\" class=\"primary\">Sign in</button></form>\
     <p class=\"muted\">Create a key with <code>origin-inventory organizer create --name NAME</code>. It stays in this \
     tab only.</p></section><p id=\"problem\" class=\"problem\" role=\"alert\"></p>";

fn organizer_page(title: &str, body: &str) -> Response {
    let head = format!("<style>{STYLE}</style>");
    let html = page_with_head(title, &head, &format!("{body}{SIGN_IN}<script>{SCRIPT}</script>"));
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `GET /organizer`: the organizer's events.
#[utoipa::path(get, path = "/organizer", tag = "pages", responses(
    (status = 200, content_type = "text/html", description = "A shell: its script signs in with the organizer key and reads the organizer API"),
))]
async fn events_page() -> Response {
    organizer_page(
        "Your events",
        "<div data-page=\"events\"><h1>Your events</h1><section id=\"content\" class=\"card\" hidden>\
         <table><thead><tr><th>Event</th><th>Starts</th><th>Status</th><th></th></tr></thead>\
         <tbody id=\"events\"></tbody></table>\
         <p><button type=\"button\" id=\"sign-out\">Sign out</button></p></section></div>",
    )
}

/// `GET /organizer/events/{id}`: the live dashboard of one event.
#[utoipa::path(get, path = "/organizer/events/{id}", tag = "pages", params(("id" = Uuid, Path)), responses(
    (status = 200, content_type = "text/html", description = "A shell: its script signs in with the organizer key and reads the organizer API and the edge's queue statistics"),
    (status = 404, body = crate::error::Problem, description = "Not an event id"),
))]
async fn dashboard_page(ApiPath(id): ApiPath<Uuid>) -> Response {
    let body = format!(
        "<div data-page=\"dashboard\" data-event=\"{id}\"><p><a href=\"/organizer\">← Your events</a></p>\
         <h1 id=\"title\">Event</h1><p class=\"muted\" id=\"subtitle\"></p>\
         <section id=\"content\" hidden>\
         <div class=\"card controls\"><h2>Waiting room</h2><p id=\"room-state\" aria-live=\"polite\"></p>\
         <button type=\"button\" id=\"pause\" class=\"primary\">Pause the sale</button>\
         <form id=\"rate\"><label>Admit per minute <input name=\"rate\" type=\"number\" min=\"1\" required></label>\
         <label>Checkout cap <input name=\"cap\" type=\"number\" min=\"1\" required></label>\
         <button type=\"submit\">Save</button></form>\
         <p id=\"saved\" class=\"muted\" aria-live=\"polite\"></p></div>\
         <dl class=\"figures\" aria-live=\"off\">\
         <div><dt>In line</dt><dd id=\"waiting\">—</dd></div>\
         <div><dt>Admitted per minute</dt><dd><span id=\"admitting\">—</span> <small id=\"admit-goal\"></small></dd></div>\
         <div><dt>At checkout</dt><dd><span id=\"active\">—</span> <small id=\"cap\"></small></dd></div>\
         <div><dt>Sales last minute</dt><dd id=\"sales-rate\">—</dd></div>\
         <div><dt>Tickets sold</dt><dd><span id=\"sold\">—</span> <small id=\"capacity\"></small></dd></div>\
         <div><dt>Revenue</dt><dd id=\"revenue\">—</dd></div></dl>\
         <div class=\"charts\">\
         <figure class=\"card\"><figcaption>Admitted per minute (line) against the configured rate (dashed)</figcaption>\
         <svg id=\"chart-admissions\" viewBox=\"0 0 320 120\" role=\"img\" aria-label=\"Admissions per minute\"></svg></figure>\
         <figure class=\"card\"><figcaption>People in line</figcaption>\
         <svg id=\"chart-waiting\" viewBox=\"0 0 320 120\" role=\"img\" aria-label=\"People in line\"></svg></figure>\
         <figure class=\"card\"><figcaption>At checkout (line) against the cap (dashed)</figcaption>\
         <svg id=\"chart-active\" viewBox=\"0 0 320 120\" role=\"img\" aria-label=\"Sessions at checkout\"></svg></figure>\
         <figure class=\"card\"><figcaption>Orders per minute, last 30 minutes</figcaption>\
         <svg id=\"chart-sales\" viewBox=\"0 0 320 120\" role=\"img\" aria-label=\"Orders per minute\"></svg></figure>\
         </div>\
         <section class=\"card\"><h2>Seats by section</h2>\
         <p class=\"legend\"><span class=\"k sold\"></span> sold <span class=\"k held\"></span> held \
         <span class=\"k free\"></span> free</p><ul id=\"sections\" class=\"sections\"></ul></section>\
         <p class=\"muted\" id=\"queue-note\"></p></section></div>"
    );
    organizer_page("Sale dashboard", &body)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events_page)).routes(routes!(dashboard_page))
}
