//! The sales invariant checker finds nothing in a clean sale and names
//! each kind of damage it is shown.

use origin_inventory::invariants::check;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TEST_TICKET_SECRET, spawn_app};

fn count(report: &origin_inventory::invariants::Report, name: &str) -> usize {
    report.findings.iter().find(|f| f.name == name).map_or(0, |f| f.violations.len())
}

#[tokio::test]
async fn a_clean_sale_passes_and_each_kind_of_damage_is_caught() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await["id"].as_str().unwrap().to_owned();
    let section = app.a_section_of(&event).await;
    let (status, hold) = app
        .hold(
            "b1",
            &event,
            json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 2}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let body = json!({"payment_method_id": "pm_card_visa", "billing_details": {"name": "B", "email": "b@example.com"}});
    let (status, order) = app.commit("b1", &hold, "key-1", body).await;
    assert_eq!(status, 200, "{order}");

    let report = check(&app.db, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!(report.violations(), 0, "{report}");
    assert_eq!((report.orders, report.tickets), (1, 2));

    // Damage: a forged ticket code, a sold seat back on sale, a charge nobody got tickets for.
    sqlx::query("UPDATE tickets SET code = code || 'x' WHERE id = (SELECT id FROM tickets LIMIT 1)")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE inventory SET status = 'AVAILABLE' WHERE seat_id = (SELECT seat_id FROM tickets ORDER BY seat_id LIMIT 1)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sandbox_charges (id, idempotency_key, payment_method, amount_cents, currency, outcome)
         VALUES ('ch_orphan', 'orphan', 'pm_card_visa', 500, 'EUR', 'succeeded')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let report = check(&app.db, TEST_TICKET_SECRET).await.unwrap();
    assert_eq!(count(&report, "a ticket code that does not verify"), 1, "{report}");
    assert_eq!(count(&report, "a ticket on a seat not booked"), 1, "{report}");
    assert_eq!(count(&report, "a card charged without an order or refund"), 1, "{report}");
    assert_eq!(report.violations(), 3, "{report}");
}
