//! The sales invariant checker finds nothing in a clean sale, and each of
//! its checks fires on the damage it exists for: one injected damage per
//! check, inside a transaction that is rolled back, so each starts clean.

use std::collections::BTreeSet;

use origin_inventory::invariants::{Report, check};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TEST_TICKET_SECRET, TestApp, spawn_app};

fn count(report: &Report, name: &str) -> usize {
    report
        .findings
        .iter()
        .find(|f| f.name == name)
        .map_or_else(|| panic!("no check named {name}"), |f| f.violations.len())
}

/// Which database a damage is done in.
#[derive(Clone, Copy)]
enum Books {
    Sales,
    /// The sandbox payment provider's ledger, a database of its own.
    Ledger,
}
use Books::{Ledger, Sales};

/// Damage that breaks exactly the named invariant once. The schema forbids
/// some of it: those statements drop the constraint first, to show the
/// checker would catch what the schema one day might not.
const DAMAGE: &[(&str, Books, &str)] = &[
    (
        "a seat in two live tickets",
        Sales,
        "DROP INDEX tickets_one_per_seat;
         INSERT INTO tickets (id, order_id, event_id, seat_id, price_cents, code)
         SELECT gen_random_uuid(), order_id, event_id, seat_id, price_cents, code || '.copy'
         FROM tickets ORDER BY id LIMIT 1",
    ),
    (
        "a seat in two live holds",
        Sales,
        "UPDATE reservation_seats SET seat_id =
             (SELECT rs.seat_id FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
              WHERE r.status = 'held' ORDER BY r.created_at LIMIT 1)
         WHERE reservation_id =
             (SELECT id FROM reservations WHERE status = 'held' ORDER BY created_at DESC LIMIT 1)",
    ),
    (
        "sold above capacity",
        Sales,
        // The event keeps its booked seats but one: four sold, three places.
        "DELETE FROM inventory WHERE status <> 'BOOKED'
            OR seat_id = (SELECT seat_id FROM inventory WHERE status = 'BOOKED' ORDER BY seat_id LIMIT 1)",
    ),
    (
        "a ticket on a seat not booked",
        Sales,
        "UPDATE inventory SET status = 'AVAILABLE' WHERE seat_id = (SELECT seat_id FROM tickets ORDER BY seat_id LIMIT 1)",
    ),
    (
        "an order whose tickets differ from its hold",
        Sales,
        "UPDATE tickets SET voided = true WHERE id = (SELECT id FROM tickets ORDER BY id LIMIT 1)",
    ),
    (
        "an order without a successful charge",
        Sales,
        "UPDATE payments SET status = 'failed' WHERE id = (SELECT payment_id FROM orders ORDER BY order_number LIMIT 1)",
    ),
    (
        "a successful payment without an order",
        Sales,
        "INSERT INTO payments (id, reservation_id, idempotency_key, request_hash, provider, payment_method,
                               billing_name, billing_email, amount_cents, currency, status)
         SELECT gen_random_uuid(), id, 'orphan-payment', '\\x00', 'sandbox', 'pm_card_visa',
                'X', 'x@example.com', total_cents, currency, 'succeeded'
         FROM reservations WHERE status = 'held' ORDER BY created_at LIMIT 1",
    ),
    (
        "a card charged without an order or refund",
        Ledger,
        "INSERT INTO sandbox_charges (id, idempotency_key, payment_method, amount_cents, currency, outcome)
         VALUES ('ch_orphan', 'orphan', 'pm_card_visa', 500, 'EUR', 'succeeded')",
    ),
    (
        "a ticket code that does not verify",
        Sales,
        "UPDATE tickets SET code = code || 'x' WHERE id = (SELECT id FROM tickets ORDER BY id LIMIT 1)",
    ),
];

/// One event: two paid orders of two seats each, and two live holds of one.
async fn a_sale(app: &TestApp) {
    let event = app.on_sale_event(json!({})).await["id"].as_str().unwrap().to_owned();
    let section = app.a_section_of(&event).await;
    for (buyer, seats, pays) in [("b1", 2, true), ("b2", 2, true), ("h1", 1, false), ("h2", 1, false)] {
        let hold = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": seats});
        let (status, hold) = app.hold(buyer, &event, hold).await;
        assert_eq!(status, 201, "{hold}");
        if pays {
            let card = json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "B", "email": "b@example.com"}});
            let (status, order) = app.commit(buyer, &hold, &format!("key-{buyer}"), card).await;
            assert_eq!(status, 200, "{order}");
        }
    }
}

#[tokio::test]
async fn a_clean_sale_passes_and_every_check_catches_its_damage() {
    let app = spawn_app().await;
    a_sale(&app).await;
    let clean = check(&app.db, &app.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert!(clean.findings.iter().all(|f| f.violations.is_empty()), "{clean}");
    assert_eq!((clean.orders, clean.tickets, clean.in_flight), (2, 4, 0));

    // Every check has its damage here, so a new check cannot go unproven.
    let checks: BTreeSet<&str> = clean.findings.iter().map(|f| f.name).collect();
    let damaged: BTreeSet<&str> = DAMAGE.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(checks, damaged);

    for (name, books, damage) in DAMAGE {
        let mut sales = app.db.begin().await.unwrap();
        let mut ledger = app.ledger.begin().await.unwrap();
        let damaged = match books {
            Sales => &mut *sales,
            Ledger => &mut *ledger,
        };
        sqlx::raw_sql(damage).execute(damaged).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = check(&mut *sales, &mut *ledger, TEST_TICKET_SECRET).await.unwrap();
        assert_eq!(count(&report, name), 1, "{name}:\n{report}");
        sales.rollback().await.unwrap();
        ledger.rollback().await.unwrap();
    }
    let after = check(&app.db, &app.ledger, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!(after.violations(), 0, "every damage was rolled back:\n{after}");
}
