use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use origin_inventory::test_support::EventStream;

use crate::helpers::{TestApp, spawn_app};
use crate::holds::event_with_seats;

async fn watch(app: &TestApp, event: &str) -> EventStream {
    let request = app.client.get(app.url(&format!("/events/{event}/checkout/seat-changes")));
    EventStream::open(request).await
}

fn sorted(mut changes: Vec<String>) -> Vec<String> {
    changes.sort();
    changes
}

#[tokio::test]
async fn a_seat_map_hears_holds_and_releases_of_its_event_only() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let (other_event, other_seats) = event_with_seats(&app, 1, json!({})).await;
    let mut watching = watch(&app, &event).await;
    let mut watching_other = watch(&app, &other_event).await;

    let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0], seats[1]]});
    let (status, held) = app.hold("buyer", &event, body).await;
    assert_eq!(status, 201, "{held}");
    assert_eq!(
        watching.seat_changes(2).await,
        sorted(vec![format!("{} HELD", seats[0]), format!("{} HELD", seats[1])])
    );

    // A hold that loses (one seat taken) changes nothing, so says nothing.
    let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[1], seats[2]]});
    assert_eq!(app.hold("rival", &event, body).await.0, 409);

    let path = format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap());
    assert_eq!(app.buyer("buyer", Method::DELETE, &path, None).await.0, 204);
    assert_eq!(
        watching.seat_changes(2).await,
        sorted(vec![format!("{} AVAILABLE", seats[0]), format!("{} AVAILABLE", seats[1])]),
        "the failed hold announced nothing; the release freed both seats"
    );

    // The other event's page heard none of it, but does hear its own.
    let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [other_seats[0]]});
    assert_eq!(app.hold("buyer", &other_event, body).await.0, 201);
    assert_eq!(watching_other.seat_changes(1).await, vec![format!("{} HELD", other_seats[0])]);
    watching.assert_quiet(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn the_journal_forgets_rows_every_reader_has_long_read_and_keeps_the_rest() {
    let app = spawn_app().await;
    let written_ago = |minutes: &[i32]| {
        sqlx::query(
            "INSERT INTO seat_changes (event_id, seats, statuses, at)
             SELECT gen_random_uuid(), '{}', '{}', now() - make_interval(mins => m)
             FROM unnest($1::int[]) WITH ORDINALITY AS w(m, n) ORDER BY n",
        )
        .bind(minutes.to_vec())
        .execute(&app.db)
    };
    let ages = || {
        sqlx::query_scalar::<_, i32>(
            "SELECT round(extract(epoch FROM now() - at) / 60)::int FROM seat_changes ORDER BY id",
        )
        .fetch_all(&app.db)
    };
    // Kept ten minutes: readers poll a few times a second.
    written_ago(&[30, 15, 11, 9, 1, 0]).await.unwrap();
    assert_eq!(origin_inventory::live::forget_old_changes(&app.db).await.unwrap(), 3);
    assert_eq!(ages().await.unwrap(), [9, 1, 0]);

    // A journal nobody wrote to for ten minutes is forgotten whole.
    sqlx::query("UPDATE seat_changes SET at = at - interval '1 hour'").execute(&app.db).await.unwrap();
    assert_eq!(origin_inventory::live::forget_old_changes(&app.db).await.unwrap(), 3);
    assert_eq!(ages().await.unwrap(), Vec::<i32>::new());
}
