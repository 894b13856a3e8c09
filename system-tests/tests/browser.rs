//! The buyer's journey in a real browser: headless Chromium over WebDriver,
//! through the edge host (catalog, waiting room, gatekeeper) to the
//! origin's checkout and order pages. Screenshots of every step are saved
//! under `test-artifacts/browser/`.

mod support;

use chrono::Utc;
use fantoccini::Locator;
use origin_inventory::invariants;
use origin_inventory::test_support::TEST_TICKET_SECRET;
use support::browser::Browser;
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
    let seats = browser.client.find_all(Locator::Css(".seat[data-status=AVAILABLE]")).await.unwrap();
    assert!(seats.len() >= count, "{} free seats", seats.len());
    let mut ids = Vec::new();
    for seat in &seats[..count] {
        ids.push(seat.attr("data-seat").await.unwrap().expect("seats carry their id"));
        seat.click().await.unwrap();
    }
    assert!(browser.text("#selection").await.starts_with(&format!("{count} selected")));
    browser.client.find(Locator::Id("hold-selected")).await.unwrap().click().await.unwrap();
    browser.wait_for("#hold:not([hidden])", 10).await;
    ids
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

#[tokio::test]
async fn a_buyer_waits_in_the_room_then_holds_pays_and_gets_tickets() {
    let stack = Stack::start(EdgeRuntime::Host).await;
    let (event, mut first) = busy_event(&stack).await;
    let browser = Browser::start("journey").await;

    browser.goto(&stack.edge.url("/events")).await;
    browser.screenshot("0-catalog").await;
    browser.client.find(Locator::LinkText("Queue Test")).await.unwrap().click().await.unwrap();
    assert_eq!(browser.wait_for_path(&format!("/events/{event}"), 10).await, format!("/events/{event}"));
    browser.screenshot("1-event-page").await;
    browser.client.find(Locator::LinkText("Buy tickets")).await.unwrap().click().await.unwrap();
    browser.wait_for("#room-state", 10).await;
    assert!(browser.client.title().await.unwrap().starts_with("Waiting room"));
    browser.screenshot("2-waiting-room").await;

    leave(&stack, event, &mut first).await;
    // The room's own polling sends the browser on once it is admitted.
    browser.wait_for("#seat-map", 60).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), format!("/events/{event}/checkout"));
    browser.screenshot("3-seat-map").await;

    hold_seats(&browser, 2).await;
    assert_eq!(browser.client.find_all(Locator::Css("#held li")).await.unwrap().len(), 2);
    let first = browser.text("#held li").await;
    assert!(first.starts_with("Floor, standing place "), "places of a standing area: {first}");
    assert!(browser.text("#total").await.contains("60.00"), "two places at 30.00");
    browser.screenshot("4-held").await;

    pay_with(&browser, "pm_card_visa").await;
    let order = browser.wait_for_path("/orders/", 30).await;
    let tickets = browser.client.find_all(Locator::Css(".ticket")).await.unwrap();
    assert_eq!(tickets.len(), 2);
    assert_eq!(
        browser.client.find_all(Locator::Css(".ticket figure svg")).await.unwrap().len(),
        2,
        "QR codes"
    );
    browser.screenshot("5-tickets").await;

    // The page is the order's secret link: `/orders/{number}/{secret}`.
    let link: Vec<&str> = order.trim_start_matches("/orders/").split('/').collect();
    assert!(matches!(link.as_slice(), [_, secret] if secret.len() == 64), "{order}");
    assert!(browser.text("h1").await.ends_with(link[0]));
    let books = invariants::check(&stack.origin.db, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!((books.tickets, books.violations()), (2, 0), "{books}");
    browser.close().await;
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
    let problem = browser.wait_for("#problem:not(:empty)", 15).await.text().await.unwrap();
    assert!(problem.starts_with("Payment declined"), "{problem}");
    assert!(problem.contains("still held"), "{problem}");
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
    watcher.screenshot("2-freed-again").await;
    let same_page = watcher.client.execute("return window.neverReloaded === true", vec![]).await.unwrap();
    assert_eq!(same_page, serde_json::Value::Bool(true), "the watcher's map changed without a reload");
    let books = invariants::check(&stack.origin.db, TEST_TICKET_SECRET).await.unwrap();
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
    assert!(state.starts_with("You are in line"), "{state}");
    assert!(state.contains("0\npeople ahead of you"), "next after the app visitor: {state}");
    assert!(browser.client.find(Locator::Id("seat-map")).await.is_err(), "no seat map without access");
    browser.screenshot("waiting-room").await;
    browser.close().await;
}
