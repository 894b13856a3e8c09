//! Catalog pages rendered from the origin's JSON.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use wire::catalog::{Availability, Event, EventList, PriceRange};
use wire::encoding::url_encode;
use wire::money::money;
use wire::query::ListQuery;

use maud::{Markup, html};

use crate::html::page;

/// What a buyer is told about availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Available,
    FewLeft,
    SoldOut,
}

impl Band {
    /// "Few left" below 10% of capacity (or 20 seats, whichever is more).
    pub fn of(a: &Availability) -> Self {
        if a.available_seats <= 0 {
            Band::SoldOut
        } else if a.available_seats * 10 < a.total_seats || a.available_seats < 20 {
            Band::FewLeft
        } else {
            Band::Available
        }
    }

    fn label(self) -> (&'static str, &'static str) {
        match self {
            Band::Available => ("available", "Tickets available"),
            Band::FewLeft => ("few", "Few tickets left"),
            Band::SoldOut => ("sold_out", "Sold out"),
        }
    }
}

/// The event's start in its venue's time zone, e.g. `Sat 12 Jun 2027, 19:30 CEST`.
pub fn local_time(at: DateTime<Utc>, timezone: &str) -> String {
    match timezone.parse::<Tz>() {
        Ok(tz) => at.with_timezone(&tz).format("%a %-d %b %Y, %H:%M %Z").to_string(),
        Err(_) => at.format("%a %-d %b %Y, %H:%M UTC").to_string(),
    }
}

fn price_text(p: &PriceRange) -> String {
    let currency = p.currency.as_deref().unwrap_or("EUR");
    match (p.min_cents, p.max_cents) {
        (Some(min), Some(max)) if min == max => money(min, currency),
        (Some(min), Some(max)) => format!("{} – {}", money(min, currency), money(max, currency)),
        _ => "Prices to be announced".into(),
    }
}

fn band(event: &Event) -> Markup {
    let (class, text) = if event.status == "on_sale" {
        Band::of(&event.availability).label()
    } else {
        ("sold_out", status_text(&event.status))
    };
    html! { p class={ "band " (class) } { (text) } }
}

fn status_text(status: &str) -> &'static str {
    match status {
        "sold_out" => "Sold out",
        "closed" => "Sales closed",
        "cancelled" => "Cancelled",
        _ => "Not on sale",
    }
}

/// The event list with its filter form and paging.
pub fn list_page(list: &EventList, query: &ListQuery) -> String {
    let date = |d: Option<DateTime<Utc>>| d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let pages = list.meta.total.div_ceil(u64::from(list.meta.limit.max(1)));
    let previous = (list.meta.page > 1).then(|| query.with_page(list.meta.page - 1).canonical());
    let next = (u64::from(list.meta.page) < pages).then(|| query.with_page(list.meta.page + 1).canonical());
    let body = html! {
        h1 { "Events" }
        form.filters method="get" action="/events" role="search" {
            label { "Search" input name="q" value=(query.q.as_deref().unwrap_or_default()); }
            label { "Category" input name="category" value=(query.category.as_deref().unwrap_or_default()); }
            label { "City" input name="city" value=(query.city.as_deref().unwrap_or_default()); }
            label { "From" input type="date" name="from" value=(date(query.from)); }
            label { "To" input type="date" name="to" value=(date(query.to)); }
            button type="submit" { "Filter" }
        }
        @if list.data.is_empty() {
            p { "No events match these filters." }
        }
        @for event in &list.data {
            article.card {
                h2 { a href={ "/events/" (event.id) } { (event.title) } }
                p.muted {
                    (local_time(event.starts_at, &event.venue.timezone)) " · " (event.venue.name) ", "
                    (event.venue.city) " · " (event.category)
                }
                p { (price_text(&event.price_range)) }
                (band(event))
            }
        }
        @if previous.is_some() || next.is_some() {
            nav.pages aria-label="Pages" {
                @if let Some(previous) = &previous { a rel="prev" href={ "/events?" (previous) } { "Previous" } }
                @if let Some(next) = &next { a rel="next" href={ "/events?" (next) } { "Next" } }
            }
        }
    };
    page("Events", body)
}

/// One event's page, with the "Buy tickets" link the waiting room guards.
pub fn event_page(event: &Event, now: DateTime<Utc>) -> String {
    let sale_starts = event.sale_starts_at.filter(|start| *start > now);
    let sold_out = Band::of(&event.availability) == Band::SoldOut;
    let body = html! {
        article.card {
            h1 { (event.title) }
            p.muted { (local_time(event.starts_at, &event.venue.timezone)) }
            p {
                (event.venue.name) ", " (event.venue.city) " · "
                a href={ "/events?category=" (url_encode(&event.category)) } { (event.category) }
            }
            p { (event.description) }
            p { (price_text(&event.price_range)) }
            (band(event))
            @if event.status == "on_sale" {
                @if let Some(start) = sale_starts {
                    p { "Sale starts " (local_time(start, &event.venue.timezone)) "." }
                } @else if !sold_out {
                    p { a.button href={ "/events/" (event.id) "/checkout" } { "Buy tickets" } }
                }
            }
        }
    };
    page(&event.title, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::catalog::Meta;

    fn event(title: &str, available: i64) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-0000-0000-000000000001",
            "title": title, "description": "<b>loud</b>", "category": "music",
            "starts_at": "2027-06-12T17:30:00Z", "status": "on_sale", "sale_starts_at": null,
            "venue": {"name": "Arena", "city": "Berlin", "timezone": "Europe/Berlin"},
            "price_range": {"min_cents": 5900, "max_cents": 149900, "currency": "EUR"},
            "availability": {"total_seats": 1000, "available_seats": available}
        }))
        .unwrap()
    }

    #[test]
    fn organizer_text_is_escaped() {
        let html = event_page(&event("<script>alert(1)</script>", 500), Utc::now());
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;loud&lt;/b&gt;"));
    }

    #[test]
    fn times_are_shown_in_the_venue_zone_and_prices_as_money() {
        let html = event_page(&event("Show", 500), Utc::now());
        assert!(html.contains("Sat 12 Jun 2027, 19:30 CEST"), "{html}");
        assert!(html.contains("€59.00 – €1,499.00"));
        assert!(html.contains("href=\"/events/00000000-0000-0000-0000-000000000001/checkout\""));
    }

    #[test]
    fn availability_bands() {
        let band = |available| Band::of(&Availability { total_seats: 1000, available_seats: available });
        assert_eq!(band(500), Band::Available);
        assert_eq!(band(99), Band::FewLeft);
        assert_eq!(band(0), Band::SoldOut);
        assert!(!event_page(&event("Show", 0), Utc::now()).contains("Buy tickets"));
    }

    #[test]
    fn list_pages_link_to_neighbours() {
        let list = EventList { data: vec![event("A", 10)], meta: Meta { total: 45, page: 2, limit: 20 } };
        let html = list_page(&list, &ListQuery::parse("page=2&city=Berlin").unwrap());
        assert!(html.contains("rel=\"prev\" href=\"/events?city=Berlin&amp;limit=20&amp;page=1\""), "{html}");
        assert!(html.contains("rel=\"next\""));
        assert!(html.contains("value=\"Berlin\""));
    }
}
