//! The API description, generated from the handlers: every route is
//! registered through `utoipa_axum::routes!`, which takes its path and
//! method from the handler's `#[utoipa::path]`, so the router and the
//! document are one list and cannot drift.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stampede origin API",
        description = "Catalog, seat holds (compare-and-swap on per-seat inventory), idempotent checkout, \
            organizer API. Errors are `{\"error\": <stable code>, \"message\": <text>, ...details}` (the `Problem` \
            schema) with the status the operation lists.",
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "catalog", description = "Public events and seat maps"),
        (name = "checkout", description = "Holds, payment, orders: a buyer's way to tickets"),
        (name = "queue", description = "What the edge's waiting room reads from and tells the origin"),
        (name = "organizer", description = "Venues, events, sales: behind an organizer key"),
        (name = "payments", description = "The payment provider's notices"),
        (name = "pages", description = "HTML for browsers"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Names the credentials operations list under `security`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description))
        };
        components.add_security_scheme(
            "organizerKey",
            SecurityScheme::Http(
                bearer("Organizer API key (`sk_…`), from `origin-inventory organizer create --name NAME`")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "buyerSession",
            SecurityScheme::Http(
                bearer(
                    "A buyer session (`bs1…`) from `POST /api/v1/buyer-sessions`; browsers carry it in the \
                     `stampede_buyer` cookie. Names the buyer on events without a queue.",
                )
                .build(),
            ),
        );
        components.add_security_scheme(
            "accessToken",
            SecurityScheme::Http(
                bearer(
                    "The waiting room's access token (EdDSA JWT, `typ` at+jwt, `aud` = the event), or the \
                     `stampede_access_<event>` cookie. Required for checkout of queue-protected events; its `sub` \
                     names the buyer. Refused once the session ended (order placed, hold released, queue left).",
                )
                .bearer_format("JWT")
                .build(),
            ),
        );
    }
}

/// A problem answer (the `Problem` schema) with what it means here.
pub fn problem(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

fn refusals(answers: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    answers.iter().map(|(status, description)| (status.to_string(), problem(description))).collect()
}

/// How a checkout operation (holds, payment, seat map, pages) refuses a
/// caller: no admission from the waiting room, or no buyer session.
pub struct CheckoutRefusals;

impl IntoResponses for CheckoutRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refusals(&[
            (
                401,
                "`access_token_required`, `invalid_access_token` (with a `reason`), `access_session_ended`, or \
                 `buyer_session_required` on events without a queue",
            ),
            (403, "`access_token_wrong_event`: the token admits to another event"),
        ])
    }
}

/// How the organizer API refuses a caller without a valid key.
pub struct OrganizerRefusals;

impl IntoResponses for OrganizerRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refusals(&[(401, "`unauthorized`: no organizer key, or not a valid one")])
    }
}

/// The description as JSON, rendered once, from the same router that serves.
static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Keeps the description of the routes being served, for `/api/openapi.json`.
pub fn keep(document: utoipa::openapi::OpenApi) {
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(document).expect("the API description serializes");
        describe_every_response(&mut document);
        serde_json::to_string_pretty(&document).expect("JSON serializes")
    });
}

/// The origin's own description, to which the handlers add theirs.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// OpenAPI 3.1 requires a description on every response; utoipa leaves it
/// out where a handler gives none, so those get the status's reason phrase.
fn describe_every_response(document: &mut serde_json::Value) {
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for operation in
        paths.values_mut().filter_map(|item| item.as_object_mut()).flat_map(|item| item.values_mut())
    {
        let Some(responses) = operation.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if response.get("description").is_none() {
                let reason =
                    status.parse().ok().and_then(|s| StatusCode::from_u16(s).ok()?.canonical_reason());
                response["description"] = reason.unwrap_or("Answer").into();
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", responses((status = 200, body = Object, description = "OpenAPI 3.1, generated from the handlers")))]
pub async fn openapi() -> impl IntoResponse {
    let document = DOCUMENT.get().expect("the routes are built before they serve");
    ([(header::CONTENT_TYPE, "application/json")], document.as_str())
}
