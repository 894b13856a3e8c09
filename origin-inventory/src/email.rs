//! The emails buyers get, rendered from an outbox message (and, for an
//! order, what the order is for) into a standards-conforming MIME message:
//! a plain-text and an HTML body, the tickets' QR codes as inline images,
//! and the show as an `.ics` calendar entry.

use chrono::{DateTime, Utc};
use edge_core::catalog::local_time;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use maud::{DOCTYPE, html};
use serde::Deserialize;
use serde_json::Value;

use crate::display::place_name;
use crate::qr::qr_png;
use wire::money::money;

/// What an order confirmation tells beyond the outbox payload, read when
/// it is sent (see `outbox::order_details`).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderDetails {
    pub order_number: String,
    pub event_title: String,
    pub venue: String,
    pub city: String,
    pub timezone: String,
    pub starts_at: DateTime<Utc>,
    pub total_cents: i64,
    pub currency: String,
    pub tickets: Vec<TicketLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TicketLine {
    pub section: String,
    pub row: String,
    pub number: i32,
    pub general_admission: bool,
    pub tier: String,
    pub code: String,
}

impl TicketLine {
    fn place(&self) -> String {
        place_name(&self.section, &self.row, self.number, self.general_admission)
    }
}

/// An email, rendered; [`Email::message`] makes the MIME message.
#[derive(Debug)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Inline images by content id: `(cid, png)`.
    pub images: Vec<(String, Vec<u8>)>,
    /// An iCalendar entry for the show.
    pub calendar: Option<String>,
}

/// The email for an `email.*` notification. `order` is the confirmed
/// order's details (confirmations only); `public_url` is where buyers
/// reach the site, so links in the email are absolute.
pub fn render_email(
    kind: &str,
    payload: &Value,
    order: Option<&OrderDetails>,
    public_url: &str,
) -> Option<Email> {
    let to = payload["to"].as_str()?.to_owned();
    let name = payload["name"].as_str().unwrap_or("there");
    let plain = |subject: &str, text: String| Email {
        to: to.clone(),
        subject: subject.to_owned(),
        html: paragraphs_html(&text),
        text,
        images: Vec::new(),
        calendar: None,
    };
    match kind {
        "email.order_confirmed" => {
            let number = payload["order_number"].as_str()?;
            let link = payload["order_url"]
                .as_str()
                .map(|path| format!("{}{path}", public_url.trim_end_matches('/')));
            Some(match (order, link) {
                (Some(order), Some(link)) => confirmation(to, name, &link, order),
                // The order's details could not be read: a short
                // confirmation still goes out rather than none.
                (_, link) => plain(
                    &format!("Your tickets: order {number}"),
                    format!(
                        "Hello {name},\n\nyour order {number} is confirmed.{}\n\nStampede",
                        link.map(|l| format!(" Your tickets are at {l} (keep this link private)."))
                            .unwrap_or_default()
                    ),
                ),
            })
        }
        "email.payment_failed" => Some(plain(
            "Your payment did not go through",
            format!(
                "Hello {name},\n\nyour payment was declined ({}). Your seats stay held until the hold expires; \
                 you can try another card.\n\nStampede",
                payload["reason"].as_str().unwrap_or("declined")
            ),
        )),
        "email.payment_refunded" | "email.order_refunded" => Some(plain(
            "Your payment was refunded",
            format!("Hello {name},\n\nwe refunded your payment in full.\n\nStampede"),
        )),
        _ => None,
    }
}

fn confirmation(to: String, name: &str, link: &str, order: &OrderDetails) -> Email {
    let when = local_time(order.starts_at, &order.timezone);
    let total = money(order.total_cents, &order.currency);
    let count = order.tickets.len();
    let places: Vec<String> = order.tickets.iter().map(TicketLine::place).collect();
    let text = format!(
        "Hello {name},\n\nyour order {number} is confirmed: {count} ticket{s} for {title}.\n\n\
         When:  {when}\nWhere: {venue}, {city}\nSeats: {seats}\nTotal: {total}\n\n\
         Your tickets, with their QR codes, are at\n{link}\n\
         Keep this link private: it opens your tickets from any browser.\n\n\
         The QR codes are also attached to this email, and the show is attached as a calendar entry.\n\nStampede\n",
        number = order.order_number,
        s = if count == 1 { "" } else { "s" },
        title = order.event_title,
        venue = order.venue,
        city = order.city,
        seats = places.join("; "),
    );
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Your tickets" } }
            body style="font-family:system-ui,sans-serif;color:#1d1d1f" {
                p { "Hello " (name) "," }
                p { "your order " strong { (order.order_number) } " is confirmed." }
                h1 style="font-size:1.4em" { (order.event_title) }
                p { strong { (when) } br; (order.venue) ", " (order.city) br; "Total " (total) }
                p {
                    a href=(link)
                        style="background:#4338ca;color:#fff;padding:.6em 1.2em;border-radius:.4em;text-decoration:none"
                        { "Open your tickets" }
                }
                p style="color:#555" { "Keep this link private: it opens your tickets from any browser." }
                ul style="list-style:none;padding:0" {
                    @for (i, (ticket, place)) in order.tickets.iter().zip(&places).enumerate() {
                        li style="margin:0 0 1.5em" {
                            strong { (place) } " · " (ticket.tier) br;
                            img src={ "cid:ticket-" (i) } width="200" height="200" alt={ "QR code of ticket " (ticket.code) };
                            br;
                            code { (ticket.code) }
                        }
                    }
                }
                p { "Stampede" }
            }
        }
    }
    .into_string();
    Email {
        to,
        subject: format!("Your tickets for {}: order {}", order.event_title, order.order_number),
        text,
        html,
        images: order
            .tickets
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("ticket-{i}"), qr_png(&t.code)))
            .collect(),
        calendar: Some(calendar(order, link)),
    }
}

fn paragraphs_html(text: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; }
            body style="font-family:system-ui,sans-serif" { @for paragraph in text.split("\n\n") { p { (paragraph) } } }
        }
    }
    .into_string()
}

/// The show as an iCalendar (RFC 5545) entry: times in UTC, text escaped,
/// lines folded at 75 octets, CRLF line ends.
fn calendar(order: &OrderDetails, link: &str) -> String {
    let stamp = |at: DateTime<Utc>| at.format("%Y%m%dT%H%M%SZ").to_string();
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Stampede//Tickets//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@stampede", order.order_number),
        format!("DTSTAMP:{}", stamp(Utc::now())),
        format!("DTSTART:{}", stamp(order.starts_at)),
        format!("SUMMARY:{}", ical_text(&order.event_title)),
        format!("LOCATION:{}", ical_text(&format!("{}, {}", order.venue, order.city))),
        format!("DESCRIPTION:{}", ical_text(&format!("Order {}: {}", order.order_number, link))),
        format!("URL:{link}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    lines.iter().map(|line| fold(line)).collect()
}

fn ical_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n")
}

/// Splits a content line into lines of at most 75 octets (continuations
/// start with a space), never inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

impl Email {
    /// The MIME message: `multipart/alternative` text and HTML (HTML with
    /// its images in `multipart/related`), inside `multipart/mixed` with
    /// the calendar entry when there is one. lettre adds `Date` and
    /// `MIME-Version`.
    pub fn message(self, from: Mailbox, message_id: String) -> Result<Message, String> {
        let html = SinglePart::html(self.html);
        let html_part = if self.images.is_empty() {
            MultiPart::alternative().singlepart(SinglePart::plain(self.text)).singlepart(html)
        } else {
            let png = ContentType::parse("image/png").expect("a valid content type");
            let related = self.images.into_iter().fold(
                MultiPart::related().singlepart(html),
                |related, (cid, image)| {
                    related.singlepart(Attachment::new_inline(cid).body(image, png.clone()))
                },
            );
            MultiPart::alternative().singlepart(SinglePart::plain(self.text)).multipart(related)
        };
        let body = match self.calendar {
            Some(calendar) => {
                let ics = ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH").expect("valid");
                MultiPart::mixed()
                    .multipart(html_part)
                    .singlepart(Attachment::new("show.ics".to_owned()).body(calendar, ics))
            }
            None => html_part,
        };
        Message::builder()
            .message_id(Some(message_id))
            .from(from)
            .to(self.to.parse().map_err(|e| format!("bad recipient: {e}"))?)
            .subject(self.subject)
            .multipart(body)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> OrderDetails {
        serde_json::from_value(json!({
            "order_number": "STM-ABC", "event_title": "Aurora, Live; \"Berlin\"", "venue": "Arena", "city": "Berlin",
            "timezone": "Europe/Berlin", "starts_at": "2031-01-01T19:00:00Z", "total_cents": 19800, "currency": "EUR",
            "tickets": [
                {"section": "Lower 101", "row": "A", "number": 1, "general_admission": false, "tier": "Std", "code": "T1"},
                {"section": "Floor", "row": "GA", "number": 7, "general_admission": true, "tier": "<b>", "code": "T2"}
            ]
        }))
        .unwrap()
    }

    fn confirmed() -> Email {
        let payload = json!({"to": "a@b.co", "name": "Ada", "order_number": "STM-ABC", "order_url": "/orders/STM-ABC/s3cr3t"});
        render_email("email.order_confirmed", &payload, Some(&order()), "https://tickets.example/").unwrap()
    }

    #[test]
    fn a_confirmation_says_what_where_when_in_local_time_with_an_absolute_link() {
        let email = confirmed();
        assert_eq!(email.subject, "Your tickets for Aurora, Live; \"Berlin\": order STM-ABC");
        for text in [&email.text, &email.html] {
            assert!(text.contains("https://tickets.example/orders/STM-ABC/s3cr3t"), "{text}");
            assert!(text.contains("Wed 1 Jan 2031, 20:00 CET"), "{text}");
            assert!(
                text.contains("Lower 101, row A, seat 1") && text.contains("Floor, standing place 7"),
                "{text}"
            );
            assert!(text.contains("€198.00"), "{text}");
        }
        assert!(email.html.contains("&lt;b&gt;") && !email.html.contains("<b>"), "escaped");
        assert_eq!(email.images.len(), 2);
        assert!(email.images.iter().all(|(_, png)| png.starts_with(b"\x89PNG\r\n\x1a\n")));
        assert!(email.html.contains("src=\"cid:ticket-0\"") && email.html.contains("src=\"cid:ticket-1\""));
    }

    #[test]
    fn the_calendar_entry_is_rfc_5545() {
        let ics = confirmed().calendar.unwrap();
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
        assert!(ics.contains("\r\nDTSTART:20310101T190000Z\r\n"));
        assert!(ics.contains("SUMMARY:Aurora\\, Live\\; \"Berlin\""));
        assert!(ics.split("\r\n").all(|line| line.len() <= 75), "{ics}");
        assert!(!ics.replace("\r\n", "").contains('\n'), "only CRLF line ends");
        let unfolded = ics.replace("\r\n ", "");
        assert!(
            unfolded.contains("DESCRIPTION:Order STM-ABC: https://tickets.example/orders/STM-ABC/s3cr3t")
        );
    }

    #[test]
    fn folding_never_splits_a_character() {
        let folded = fold(&format!("SUMMARY:{}", "ü".repeat(80)));
        assert!(folded.split("\r\n").all(|line| line.len() <= 75));
        assert_eq!(folded.replace("\r\n ", "").trim_end(), format!("SUMMARY:{}", "ü".repeat(80)));
    }

    #[test]
    fn the_message_is_mixed_alternative_related_with_date_and_id() {
        let from: Mailbox = "Stampede <tickets@stampede.local>".parse().unwrap();
        let message = confirmed().message(from, "<m1@stampede.local>".into()).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        for part in [
            "Message-ID: <m1@stampede.local>",
            "Date: ",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed",
            "Content-Type: multipart/alternative",
            "Content-Type: multipart/related",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
            "Content-Type: image/png",
            "Content-ID: <ticket-0>",
            "Content-Type: text/calendar",
            "filename=\"show.ics\"",
        ] {
            assert!(raw.contains(part), "{part} missing in:\n{}", &raw[..raw.len().min(3000)]);
        }
    }

    #[test]
    fn other_kinds_have_text_and_html_and_unknown_ones_none() {
        let failed =
            render_email("email.payment_failed", &json!({"to": "a@b.co", "name": "Ada"}), None, "").unwrap();
        assert!(failed.text.starts_with("Hello Ada") && failed.html.contains("<p>Hello Ada,</p>"));
        assert!(render_email("email.unknown", &json!({"to": "a@b.co"}), None, "").is_none());
        assert!(
            render_email("email.order_confirmed", &json!({"name": "no address"}), Some(&order()), "")
                .is_none()
        );
        let payload = json!({"to": "a@b.co", "order_number": "STM-1", "order_url": "/orders/STM-1/s"});
        let short = render_email("email.order_confirmed", &payload, None, "https://t.example").unwrap();
        assert_eq!(short.subject, "Your tickets: order STM-1", "without the order's details");
        assert!(short.text.contains("https://t.example/orders/STM-1/s") && short.calendar.is_none());
    }
}
