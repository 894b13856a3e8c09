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
use maud::{Markup, PreEscaped, html};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiPath;
use crate::state::AppState;

const SCRIPT: &str = include_str!("organizer.js");
const STYLE: &str = include_str!("organizer.css");

/// Signing in: the key is checked by the first API call it makes.
fn sign_in() -> Markup {
    html! {
        section #sign-in .card hidden {
            h2 { "Sign in" }
            form #sign-in-form {
                label {
                    "Organizer API key "
                    input name="key" type="password" autocomplete="current-password" required placeholder="sk_…";
                }
                button type="submit" .primary { "Sign in" }
            }
            p.muted {
                "Create a key with " code { "origin-inventory organizer create --name NAME" } ". It stays in this tab only."
            }
        }
        p #problem .problem role="alert" {}
    }
}

fn organizer_page(title: &str, body: Markup) -> Response {
    let head = html! { style { (PreEscaped(STYLE)) } };
    let body = html! { (body) (sign_in()) script { (PreEscaped(SCRIPT)) } };
    let html = page_with_head(title, head, body);
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `GET /organizer`: the organizer's events.
#[utoipa::path(get, path = "/organizer", tag = "pages", responses(
    (status = 200, content_type = "text/html", description = "A shell: its script signs in with the organizer key and reads the organizer API"),
))]
async fn events_page() -> Response {
    organizer_page(
        "Your events",
        html! {
            div data-page="events" {
                h1 { "Your events" }
                section #content .card hidden {
                    table {
                        thead { tr { th { "Event" } th { "Starts" } th { "Status" } th {} } }
                        tbody #events {}
                    }
                    p { button type="button" #sign-out { "Sign out" } }
                }
            }
        },
    )
}

/// A chart of the dashboard, drawn by the script.
fn chart(id: &str, caption: &str, label: &str) -> Markup {
    html! {
        figure.card {
            figcaption { (caption) }
            svg id=(id) viewBox="0 0 320 120" role="img" aria-label=(label) {}
        }
    }
}

/// `GET /organizer/events/{id}`: the live dashboard of one event.
#[utoipa::path(get, path = "/organizer/events/{id}", tag = "pages", params(("id" = Uuid, Path)), responses(
    (status = 200, content_type = "text/html", description = "A shell: its script signs in with the organizer key and reads the organizer API and the edge's queue statistics"),
    (status = 404, body = crate::error::Problem, description = "Not an event id"),
))]
async fn dashboard_page(ApiPath(id): ApiPath<Uuid>) -> Response {
    let body = html! {
        div data-page="dashboard" data-event=(id) {
            p { a href="/organizer" { "← Your events" } }
            h1 #title { "Event" }
            p.muted #subtitle {}
            section #content hidden {
                div.card.controls {
                    h2 { "Waiting room" }
                    p #room-state aria-live="polite" {}
                    button type="button" #pause .primary { "Pause the sale" }
                    form #rate {
                        label { "Admit per minute " input name="rate" type="number" min="1" required; }
                        label { "Checkout cap " input name="cap" type="number" min="1" required; }
                        button type="submit" { "Save" }
                    }
                    p #saved .muted aria-live="polite" {}
                }
                dl.figures aria-live="off" {
                    div { dt { "In line" } dd #waiting { "—" } }
                    div { dt { "Admitted per minute" } dd { span #admitting { "—" } " " small #admit-goal {} } }
                    div { dt { "At checkout" } dd { span #active { "—" } " " small #cap {} } }
                    div { dt { "Sales last minute" } dd #sales-rate { "—" } }
                    div { dt { "Tickets sold" } dd { span #sold { "—" } " " small #capacity {} } }
                    div { dt { "Revenue" } dd #revenue { "—" } }
                }
                div.charts {
                    (chart("chart-admissions", "Admitted per minute (line) against the configured rate (dashed)", "Admissions per minute"))
                    (chart("chart-waiting", "People in line", "People in line"))
                    (chart("chart-active", "At checkout (line) against the cap (dashed)", "Sessions at checkout"))
                    (chart("chart-sales", "Orders per minute, last 30 minutes", "Orders per minute"))
                }
                section.card {
                    h2 { "Seats by section" }
                    p.legend {
                        span.k.sold {} " sold " span.k.held {} " held " span.k.free {} " free"
                    }
                    ul #sections .sections {}
                }
                p.muted #queue-note {}
            }
        }
    };
    organizer_page("Sale dashboard", body)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events_page)).routes(routes!(dashboard_page))
}
