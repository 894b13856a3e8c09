//! The buyer's journey in a real browser: headless Chromium over WebDriver,
//! through the edge host (catalog, waiting room, gatekeeper) to the
//! origin's checkout and order pages. Screenshots of every step are saved
//! under `test-artifacts/browser/`.

mod support;

use chrono::Utc;
use fantoccini::Locator;
use origin_inventory::invariants;
use origin_inventory::outbox::{Notifier, deliver_due};
use origin_inventory::test_support::TEST_TICKET_SECRET;
use support::browser::{Browser, Screen};
use support::{EdgeRuntime, Stack, Visitor, client, queue};
use uuid::Uuid;

/// A queue-protected event on sale for an hour, admitting one buyer at a
/// time, with an app visitor already holding that one place.
async fn busy_event(stack: &Stack) -> (Uuid, Visitor) {
    let event = stack.event(queue(60, 1), Utc::now() - chrono::Duration::hours(1)).await;
    let mut first = Visitor::default();
    let joined =
        first.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/join")))).await;
    assert_eq!(joined.json()["state"], "admitted", "{}", joined.text);
    (event, first)
}

/// Lets the app visitor's place go, so the next in line is admitted.
async fn leave(stack: &Stack, event: Uuid, visitor: &mut Visitor) {
    let left =
        visitor.send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/queue/leave")))).await;
    assert_eq!(left.status, 200, "{}", left.text);
}

/// Clicks the first `count` free seats of the map and holds them; returns their ids.
/// The event's reservations in the origin's database, counted by status.
async fn holds_by_status(stack: &Stack, event: Uuid) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT status, count(*) FROM reservations WHERE event_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(event)
    .fetch_all(&stack.origin.db)
    .await
    .unwrap()
}

async fn hold_seats(browser: &Browser, count: usize) -> Vec<String> {
    browser.wait_for(".seat[data-status=AVAILABLE]", 15).await;
    let seats = browser.client.find_all(Locator::Css(".seat[data-status=AVAILABLE]")).await.unwrap();
    assert!(seats.len() >= count, "{} free seats", seats.len());
    let mut ids = Vec::new();
    for seat in &seats[..count] {
        ids.push(seat.attr("data-seat").await.unwrap().expect("seats carry their id"));
        // As a person scrolls a seat out from under the action bar.
        browser
            .client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![serde_json::to_value(seat).unwrap()],
            )
            .await
            .unwrap();
        seat.click().await.unwrap();
    }
    assert!(browser.text("#selection").await.starts_with(&format!("{count} selected")));
    browser.client.find(Locator::Id("hold-selected")).await.unwrap().click().await.unwrap();
    browser.wait_for("#hold:not([hidden])", 10).await;
    ids
}

/// The free places the overview shows for the first section.
async fn free_in_first_section(browser: &Browser) -> serde_json::Value {
    browser.js("return document.querySelector('.section-pick [data-free]').textContent").await
}

/// Waits until the map shows each of `seats` with `status`.
async fn wait_for_seats(browser: &Browser, seats: &[String], status: &str, seconds: u64) {
    for seat in seats {
        browser.wait_for(&format!(".seat[data-seat='{seat}'][data-status={status}]"), seconds).await;
    }
}

async fn pay_with(browser: &Browser, card: &str) {
    let form = browser.client.form(Locator::Id("pay")).await.unwrap();
    form.set_by_name("name", "Ada Lovelace").await.unwrap();
    form.set_by_name("email", "ada@example.com").await.unwrap();
    browser
        .client
        .find(Locator::Css(&format!("select[name=payment_method_id] option[value={card}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    form.submit().await.unwrap();
}

// Each journey lists the catalog, whose pages are cached in Redis by key:
// the two run at once on Redis databases of their own.
#[tokio::test]
async fn a_buyer_waits_in_the_room_then_holds_pays_and_gets_tickets_on_a_desktop() {
    journey(Screen::Desktop, "journey", 1).await;
}

#[tokio::test]
async fn a_buyer_waits_in_the_room_then_holds_pays_and_gets_tickets_on_a_phone() {
    journey(Screen::Phone, "journey-phone", 2).await;
}

/// The email confirming `number`, delivered by the outbox to the test
/// mail server with links to this stack's edge.
async fn confirmation_email(stack: &Stack, number: &str) -> String {
    let smtp =
        std::env::var("STAMPEDE_TEST_SMTP_URL").expect("STAMPEDE_TEST_SMTP_URL: run `cargo xtask test`");
    let maildir = std::env::var("STAMPEDE_TEST_MAILDIR").expect("STAMPEDE_TEST_MAILDIR");
    let notifier = Notifier::new(&smtp, "Stampede <tickets@stampede.local>", 1, &stack.edge.url("")).unwrap();
    deliver_due(&stack.origin.db, &notifier).await.unwrap();
    let mail = std::fs::read_dir(std::path::Path::new(&maildir).join("new"))
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .find(|mail| mail.contains(number))
        .expect("the confirmation reached the mail server");
    let parsed = mail_parser::MessageParser::default().parse(mail.as_bytes()).expect("a MIME message");
    parsed.body_text(0).expect("a text body").into_owned()
}

async fn journey(screen: Screen, name: &str, redis_db: u8) {
    let stack = Stack::start_with(EdgeRuntime::Host, redis_db, &[]).await;
    let (event, mut first) = busy_event(&stack).await;
    let browser = Browser::start_on(name, screen).await;

    browser.goto(&stack.edge.url("/events")).await;
    browser.screenshot("0-catalog").await;
    browser.client.find(Locator::LinkText("Queue Test")).await.unwrap().click().await.unwrap();
    assert_eq!(browser.wait_for_path(&format!("/events/{event}"), 10).await, format!("/events/{event}"));
    browser.screenshot("1-event-page").await;
    browser.client.find(Locator::LinkText("Buy tickets")).await.unwrap().click().await.unwrap();
    let state = browser.wait_for("#room-state", 10).await.text().await.unwrap();
    assert!(browser.client.title().await.unwrap().starts_with("Waiting room"));
    assert!(state.starts_with("Checkout is full right now"), "why the visitor waits: {state}");
    browser.screenshot("2-waiting-room").await;
    // Polls keep the place and the estimate on the page.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let polled = browser.text("#room-state").await;
    assert!(polled.contains("your place") && polled.contains("estimated wait"), "after polls: {polled}");

    leave(&stack, event, &mut first).await;
    // The room's own polling sends the browser on once it is admitted.
    browser.wait_for("#seat-map", 60).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), format!("/events/{event}/checkout"));
    browser.screenshot("3-seat-map").await;

    hold_seats(&browser, 2).await;
    assert_eq!(browser.client.find_all(Locator::Css("#held li")).await.unwrap().len(), 2);
    let held = rect(&browser, "#hold-title").await;
    assert!(
        held.top >= 0.0 && held.bottom <= viewport_height(&browser).await,
        "{screen:?}: the hold is in view: {held:?}"
    );
    let first = browser.text("#held li").await;
    assert!(first.starts_with("Floor, standing place "), "places of a standing area: {first}");
    assert!(browser.text("#total").await.contains("60.00"), "two places at 30.00");
    browser.screenshot("4-held").await;

    // A reload (or a second tab) brings the hold back from the server.
    browser.client.refresh().await.unwrap();
    browser.wait_for("#hold:not([hidden])", 15).await;
    assert_eq!(browser.client.find_all(Locator::Css("#held li")).await.unwrap().len(), 2, "after a reload");
    assert!(browser.text("#total").await.contains("60.00"), "after a reload");
    browser.screenshot("4b-held-after-reload").await;

    pay_with(&browser, "pm_card_visa").await;
    let order = browser.wait_for_path("/orders/", 30).await;
    let tickets = browser.client.find_all(Locator::Css(".ticket")).await.unwrap();
    assert_eq!(tickets.len(), 2);
    let ticket = browser.text(".ticket h3").await;
    assert!(ticket.starts_with("Floor, standing place "), "worded as the hold was: {ticket}");
    assert_eq!(
        browser.client.find_all(Locator::Css(".ticket figure svg")).await.unwrap().len(),
        2,
        "QR codes"
    );
    browser.screenshot("5-tickets").await;

    // The page is the order's secret link: `/orders/{number}/{secret}`.
    let link: Vec<&str> = order.trim_start_matches("/orders/").split('/').collect();
    assert!(matches!(link.as_slice(), [_, secret] if secret.len() == 64), "{order}");
    assert!(browser.text("#order-title").await.ends_with(link[0]));
    assert_eq!(browser.text("h1").await, "Queue Test");
    let when = browser.text(".when").await;
    // 19:00 UTC on New Year's Day is 20:00 in Berlin, where the hall is.
    assert!(when.contains("Wed 1 Jan 2031, 20:00 CET") && when.contains("Hall, Berlin"), "{when}");
    let codes = ticket_codes(&browser).await;
    browser.close().await;

    // The email's link works in another browser, without the waiting room.
    let email = confirmation_email(&stack, link[0]).await;
    let emailed = stack.edge.url(&order);
    assert!(email.lines().any(|line| line.trim() == emailed), "the email links to {emailed}: {email}");
    let fresh = Browser::start_on(&format!("{name}-fresh-browser"), screen).await;
    fresh.goto(&emailed).await;
    fresh.wait_for(".ticket", 15).await;
    assert_eq!(ticket_codes(&fresh).await, codes, "the same tickets from a fresh browser");
    fresh.screenshot("tickets-from-the-email").await;
    fresh.close().await;
    let books = invariants::check(&stack.origin.db, &stack.origin.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!((books.tickets, books.violations()), (2, 0), "{books}");
}

async fn ticket_codes(browser: &Browser) -> Vec<String> {
    let mut codes = Vec::new();
    for code in browser.client.find_all(Locator::Css(".ticket code")).await.unwrap() {
        codes.push(code.text().await.unwrap());
    }
    assert!(!codes.is_empty(), "tickets on the page");
    codes
}

#[tokio::test]
async fn too_many_seats_and_a_declined_card_are_explained_and_the_hold_kept() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event(queue(6000, 100), Utc::now() - chrono::Duration::hours(1)).await;
    let browser = Browser::start("declined").await;
    browser.goto(&stack.edge.url(&format!("/events/{event}/checkout"))).await;
    browser.wait_for("#seat-map", 30).await;

    let best = browser.client.form(Locator::Id("best")).await.unwrap();
    best.set_by_name("quantity", "99").await.unwrap();
    best.submit().await.unwrap();
    let limit = browser.wait_for("#problem:not(:empty)", 15).await.text().await.unwrap();
    assert!(limit.starts_with("You can hold at most"), "{limit}");
    assert!(browser.client.find(Locator::Css("#hold[hidden]")).await.is_ok(), "nothing was held");
    assert_eq!(holds_by_status(&stack, event).await, Vec::<(String, i64)>::new(), "and nothing was held");
    browser.screenshot("over-the-limit").await;

    hold_seats(&browser, 1).await;
    pay_with(&browser, "pm_card_chargeDeclined").await;
    let problem = browser.wait_for("#pay-problem:not(:empty)", 15).await.text().await.unwrap();
    assert_eq!(
        problem,
        "Payment declined: Your card was declined. Your seats are still held; try another card."
    );
    // Said where the buyer acted: right below the Pay button, on screen.
    let (pay, said) =
        (rect(&browser, "#pay button[type=submit]").await, rect(&browser, "#pay-problem").await);
    assert!(said.top >= pay.bottom && said.top - pay.bottom < 40.0, "pay {pay:?}, problem {said:?}");
    assert!(said.bottom <= viewport_height(&browser).await, "the problem is in view");
    assert!(browser.client.find(Locator::Css("#hold:not([hidden])")).await.is_ok(), "the hold stays");
    assert_eq!(holds_by_status(&stack, event).await, [("held".to_owned(), 1)], "the hold stays");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE status <> 'failed'")
        .fetch_one(&stack.origin.db)
        .await
        .unwrap();
    assert_eq!(pending, 0, "the declined payment is recorded as failed, nothing else");
    browser.screenshot("declined").await;
    browser.close().await;
}

#[tokio::test]
async fn another_buyers_map_follows_holds_live_and_an_expired_hold_frees_its_seats() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event(queue(6000, 100), Utc::now() - chrono::Duration::hours(1)).await;
    let checkout = stack.edge.url(&format!("/events/{event}/checkout"));
    let watcher = Browser::start("live-watcher").await;
    let buyer = Browser::start("live-buyer").await;
    for browser in [&watcher, &buyer] {
        browser.goto(&checkout).await;
        browser.wait_for("#seat-map", 30).await;
    }
    // Set on the page, lost on a reload.
    watcher.client.execute("window.neverReloaded = true", vec![]).await.unwrap();

    let held = hold_seats(&buyer, 2).await;
    wait_for_seats(&watcher, &held, "HELD", 20).await;
    // The section's count of free places follows the changes too.
    assert_eq!(free_in_first_section(&watcher).await, "198");
    watcher.screenshot("1-taken-by-another-buyer").await;

    // The hold runs out before the buyer pays.
    for lapse in [
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE event_id = $1 AND status = 'held'",
        "UPDATE inventory SET held_until = now() - interval '1 second' WHERE event_id = $1 AND status = 'HELD'",
    ] {
        sqlx::query(lapse).bind(event).execute(&stack.origin.db).await.unwrap();
    }
    pay_with(&buyer, "pm_card_visa").await;
    let problem = buyer.wait_for("#problem:not(:empty)", 15).await.text().await.unwrap();
    assert!(problem.starts_with("Your hold expired and the seats were released"), "{problem}");
    assert!(buyer.client.find(Locator::Css("#hold[hidden]")).await.is_ok(), "the hold panel is gone");
    wait_for_seats(&buyer, &held, "AVAILABLE", 20).await;
    buyer.screenshot("expired-hold").await;

    wait_for_seats(&watcher, &held, "AVAILABLE", 20).await;
    assert_eq!(free_in_first_section(&watcher).await, "200");
    watcher.screenshot("2-freed-again").await;
    let same_page = watcher.client.execute("return window.neverReloaded === true", vec![]).await.unwrap();
    assert_eq!(same_page, serde_json::Value::Bool(true), "the watcher's map changed without a reload");
    let books = invariants::check(&stack.origin.db, &stack.origin.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!((books.tickets, books.violations()), (0, 0), "{books}");
    buyer.close().await;
    watcher.close().await;
}

#[tokio::test]
async fn typing_the_checkout_url_without_access_lands_in_the_waiting_room() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let (event, _first) = busy_event(&stack).await;
    let browser = Browser::start("no-access").await;
    browser.goto(&stack.edge.url(&format!("/events/{event}/checkout"))).await;
    let state = browser.wait_for("#room-state", 10).await.text().await.unwrap();
    // The app visitor holds the one checkout place: this visitor is next,
    // held back by the cap, and told so.
    assert!(state.starts_with("Checkout is full right now"), "{state}");
    assert!(state.contains("0\npeople ahead of you"), "next after the app visitor: {state}");
    let wait = browser.text("#wait").await;
    assert!(
        wait == "under a minute" || (wait.starts_with("about ") && !wait.starts_with("about 0 ")),
        "{wait}"
    );
    assert!(browser.client.find(Locator::Id("seat-map")).await.is_err(), "no seat map without access");
    browser.screenshot("waiting-room").await;
    browser.close().await;
}

#[derive(Debug, serde::Deserialize)]
struct Rect {
    top: f64,
    bottom: f64,
    left: f64,
    right: f64,
    width: f64,
    height: f64,
}

/// Where the first element matching `css` is on screen, in CSS pixels.
async fn rect(browser: &Browser, css: &str) -> Rect {
    let script = format!("return document.querySelector({css:?}).getBoundingClientRect().toJSON()");
    serde_json::from_value(browser.js(&script).await).unwrap()
}

async fn viewport_height(browser: &Browser) -> f64 {
    browser.js("return innerHeight").await.as_f64().unwrap()
}

/// A computed style property of the first element matching `css`.
async fn style(browser: &Browser, css: &str, property: &str) -> String {
    let script = format!("return getComputedStyle(document.querySelector({css:?}))[{property:?}]");
    browser.js(&script).await.as_str().unwrap().to_owned()
}

/// WCAG 2 contrast ratio of two `rgb(…)` colours as computed styles give them.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |colour: &str| {
        let channels: Vec<f64> = colour
            .trim_start_matches("rgba(")
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .take(3)
            .map(|c| c.trim().parse::<f64>().unwrap_or_else(|_| panic!("a colour: {colour}")) / 255.0)
            .map(|c| if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) })
            .collect();
        0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    };
    let (l1, l2) = (luminance(a), luminance(b));
    (l1.max(l2) + 0.05) / (l1.min(l2) + 0.05)
}

#[test]
fn contrast_is_computed_as_wcag_defines_it() {
    assert!((contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") - 21.0).abs() < 1e-9);
    assert!((contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)") - 4.54).abs() < 0.01);
    assert_eq!(contrast("rgb(10, 20, 30)", "rgb(10, 20, 30)"), 1.0);
}

/// An arena in small: a standing floor and three seated sections, with
/// wheelchair spaces at the end of each seated section's first row.
fn arena() -> serde_json::Value {
    let rows = |count: u8, seats: u32| -> Vec<serde_json::Value> {
        (0..count)
            .map(|r| {
                let accessible: Vec<u32> = if r == 0 { vec![seats - 1, seats] } else { vec![] };
                serde_json::json!({"label": ((b'A' + r) as char).to_string(), "seats": seats, "accessible": accessible})
            })
            .collect()
    };
    serde_json::json!({
        "name": "Arena", "city": "Berlin", "timezone": "Europe/Berlin",
        "tiers": [{"name": "Floor", "price_cents": 6900, "currency": "EUR"},
                  {"name": "Lower", "price_cents": 9900, "currency": "EUR"},
                  {"name": "Balcony", "price_cents": 5900, "currency": "EUR"}],
        "sections": [
            {"name": "Floor", "tier": "Floor", "capacity": 600},
            {"name": "Lower 101", "tier": "Lower", "rows": rows(20, 25)},
            {"name": "Lower 102", "tier": "Lower", "rows": rows(20, 25)},
            {"name": "Balcony 201", "tier": "Balcony", "rows": rows(15, 30)},
        ],
    })
}

/// The seat (its `data-place`) that has the keyboard focus.
async fn focused_place(browser: &Browser) -> String {
    browser.js("return document.activeElement.dataset.place || ''").await.as_str().unwrap().to_owned()
}

async fn press(browser: &Browser, key: fantoccini::key::Key) {
    browser.client.active_element().await.unwrap().send_keys(&key.to_string()).await.unwrap();
}

#[tokio::test]
async fn an_arena_is_chosen_by_section_then_seat_with_touch_or_keyboard_on_desktop_and_phone() {
    use fantoccini::key::Key;
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event_at(arena(), queue(6000, 100), Utc::now() - chrono::Duration::hours(1)).await;
    let checkout = stack.edge.url(&format!("/events/{event}/checkout"));
    for (screen, name) in [(Screen::Desktop, "arena-desktop"), (Screen::Phone, "arena-phone")] {
        let browser = Browser::start_on(name, screen).await;
        browser.goto(&checkout).await;
        browser.wait_for(".section-pick", 30).await;
        browser.wait_for("#selection strong", 15).await; // the map arrived
        let width = browser.js("return innerWidth").await.as_f64().unwrap();
        let height = viewport_height(&browser).await;
        assert_eq!(
            browser.client.find_all(Locator::Css(".section-pick")).await.unwrap().len(),
            4,
            "{screen:?}"
        );
        let floor = browser.text(".section-pick").await;
        assert!(floor.contains("600 of 600 free") && floor.contains("from €69.00"), "{screen:?}: {floor}");
        browser.screenshot("1-sections").await;

        // Nothing spills sideways; a handful of tab stops, not one per seat.
        let page_width = browser.js("return document.documentElement.scrollWidth").await.as_f64().unwrap();
        assert!(page_width <= width, "{screen:?}: page {page_width} px wide in a {width} px viewport");
        browser
            .client
            .find(Locator::XPath("//button[.//span[text()='Lower 101']]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.wait_for("#section-view:not([hidden]) .seat", 15).await;
        let seats = browser.js("return document.querySelectorAll('.seat').length").await;
        assert_eq!(seats, 500, "{screen:?}: the open section's seats only");
        let tab_stops = browser
            .js("return [...document.querySelectorAll('a,button,input,select,[tabindex]')]
                 .filter(e => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length).length")
            .await
            .as_u64()
            .unwrap();
        assert!(tab_stops < 25, "{screen:?}: {tab_stops} tab stops");
        let map = rect(&browser, "#map-box").await;
        assert!(map.left >= 0.0 && map.right <= width, "{screen:?}: the map's box fits the screen: {map:?}");
        let seat = rect(&browser, ".seat").await;
        assert!(seat.width >= 20.0 && seat.height >= 20.0, "{screen:?}: a seat a finger can hit: {seat:?}");
        let bar = rect(&browser, "#action-bar").await;
        assert!(
            bar.bottom <= height + 1.0 && bar.top < height,
            "{screen:?}: the action bar is on screen: {bar:?}"
        );
        browser.screenshot("2-section").await;

        // Keyboard: arrows move through rows and seats, Space picks.
        browser.js("document.querySelector('.seat[tabindex=\"0\"]').focus()").await;
        assert_eq!(focused_place(&browser).await, "Lower 101, row A, seat 1");
        press(&browser, Key::Right).await;
        assert_eq!(focused_place(&browser).await, "Lower 101, row A, seat 2");
        press(&browser, Key::Down).await;
        assert_eq!(focused_place(&browser).await, "Lower 101, row B, seat 2");
        press(&browser, Key::End).await;
        assert_eq!(focused_place(&browser).await, "Lower 101, row B, seat 25");
        press(&browser, Key::Up).await;
        assert_eq!(focused_place(&browser).await, "Lower 101, row A, seat 25");
        let label = browser.js("return document.activeElement.getAttribute('aria-label')").await;
        assert!(label.as_str().unwrap().contains("wheelchair space"), "{screen:?}: {label}");
        press(&browser, Key::Home).await;
        press(&browser, Key::Space).await;
        assert_eq!(
            browser.js("return document.activeElement.getAttribute('aria-checked')").await,
            "true",
            "{screen:?}: Space picks the focused seat"
        );
        assert!(browser.text("#selection").await.starts_with("1 selected · €99.00"), "{screen:?}");
        let hold = rect(&browser, "#hold-selected").await;
        assert!(hold.bottom <= height && hold.top >= 0.0, "{screen:?}: Hold is on screen: {hold:?}");
        browser.screenshot("3-picked-by-keyboard").await;

        // Every state stands out from the white map (3:1, WCAG's bar for
        // graphics) and the tick from the selected seat.
        let white = "rgb(255, 255, 255)";
        let available = style(&browser, ".seat[aria-checked=false][data-status=AVAILABLE]", "fill").await;
        let chosen = style(&browser, ".seat[aria-checked=true]", "fill").await;
        let tick = style(&browser, ".seat[aria-checked=true] + .tick", "stroke").await;
        let ring = style(&browser, "#focus-ring", "stroke").await;
        assert_eq!(style(&browser, "#map-box", "backgroundColor").await, white, "{screen:?}");
        assert_eq!(style(&browser, "#focus-ring", "display").await, "inline", "{screen:?}: focus shows");
        for (state, colour, against) in
            [("available", &available, white), ("selected", &chosen, white), ("focus ring", &ring, white)]
        {
            assert!(contrast(colour, against) >= 3.0, "{screen:?}: {state} {colour} on {against}");
        }
        assert!(contrast(&tick, &chosen) >= 4.5, "{screen:?}: tick {tick} on {chosen}");
        assert_ne!(chosen, available, "{screen:?}");

        // Best available is one tap; what it holds shows as taken.
        browser.client.find(Locator::Css("#best button[type=submit]")).await.unwrap().click().await.unwrap();
        browser.wait_for("#hold:not([hidden])", 15).await;
        assert_eq!(browser.client.find_all(Locator::Css("#held li")).await.unwrap().len(), 2, "{screen:?}");
        let taken = style(&browser, ".seat[data-status=HELD]", "stroke").await;
        assert!(contrast(&taken, white) >= 3.0, "{screen:?}: taken {taken}");
        assert_eq!(
            style(&browser, ".seat[data-status=HELD]", "fill").await,
            white,
            "{screen:?}: taken is hollow"
        );
        browser.screenshot("4-best-available").await;
        browser.client.find(Locator::Id("release")).await.unwrap().click().await.unwrap();
        browser.wait_for("#hold[hidden]", 15).await;
        browser.close().await;
    }
}

#[tokio::test]
async fn an_organizer_signs_in_watches_the_sale_live_and_pauses_it() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let event = stack.event(queue(600, 100), Utc::now() - chrono::Duration::hours(1)).await;
    // A buyer holds two places, through the edge as an app does.
    let (mut buyer, _) = support::admitted(&stack, event).await;
    let map = buyer.send(client().get(stack.edge.url(&format!("/api/v1/events/{event}/seatmap")))).await;
    let section = map.json()["sections"][0]["id"].as_str().unwrap().to_owned();
    let hold =
        serde_json::json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 2});
    let held = buyer
        .send(client().post(stack.edge.url(&format!("/api/v1/events/{event}/reservations"))).json(&hold))
        .await;
    assert_eq!(held.status, 201, "{}", held.text);

    let browser = Browser::start("organizer").await;
    browser.goto(&stack.edge.url("/organizer")).await;
    let form = browser.wait_for("#sign-in:not([hidden]) form", 15).await;
    browser.screenshot("1-sign-in").await;
    form.find(Locator::Css("input[name=key]")).await.unwrap().send_keys("sk_wrong").await.unwrap();
    browser.client.form(Locator::Id("sign-in-form")).await.unwrap().submit().await.unwrap();
    let refused = browser.wait_for("#problem:not(:empty)", 15).await.text().await.unwrap();
    assert_eq!(refused, "That key was not accepted.");
    let key = browser.wait_for("#sign-in:not([hidden]) input[name=key]", 15).await;
    key.send_keys(support::ORGANIZER_KEY).await.unwrap();
    browser.client.form(Locator::Id("sign-in-form")).await.unwrap().submit().await.unwrap();
    browser.wait_for("#events tr", 15).await;
    assert!(browser.text("#events").await.contains("Queue Test"));
    browser.screenshot("2-events").await;

    browser.client.find(Locator::LinkText("Dashboard")).await.unwrap().click().await.unwrap();
    browser.wait_for("#content:not([hidden])", 15).await;
    // The queue's figures come from the edge beside its Redis.
    browser.wait_for("#admit-goal:not(:empty)", 15).await;
    assert_eq!(browser.text("#admit-goal").await, "of 600");
    assert_eq!(browser.text("#active").await, "1", "the buyer's checkout session");
    assert_eq!(browser.text("#cap").await, "of 100");
    assert_eq!(browser.text("#sections li").await, "Floor: 0 sold, 2 held, 198 free of 200");
    assert_eq!(browser.text("#revenue").await, "€0.00");
    for chart in ["admissions", "waiting", "active", "sales"] {
        let shapes =
            browser.js(&format!("return document.querySelector('#chart-{chart}').children.length")).await;
        assert!(shapes.as_u64().unwrap() >= 3, "{chart} is drawn: {shapes}");
    }
    browser.screenshot("3-dashboard").await;

    let paused = || async {
        sqlx::query_scalar::<_, bool>("SELECT queue_paused FROM events WHERE id = $1")
            .bind(event)
            .fetch_one(&stack.origin.db)
            .await
            .unwrap()
    };
    browser.client.find(Locator::Id("pause")).await.unwrap().click().await.unwrap();
    browser.wait_for("#saved:not(:empty)", 15).await;
    assert!(browser.text("#room-state").await.starts_with("Paused"));
    assert!(paused().await, "the pause reached the database");
    assert_eq!(browser.text("#pause").await, "Resume the sale");
    browser.screenshot("4-paused").await;
    browser.client.find(Locator::Id("pause")).await.unwrap().click().await.unwrap();
    browser.wait_for("#pause:not(:disabled)", 15).await;
    let started = std::time::Instant::now();
    while paused().await {
        assert!(started.elapsed().as_secs() < 15, "resumed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    browser.close().await;
}
