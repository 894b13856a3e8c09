use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use origin_inventory::frontiers::{LOCK_WAIT, advance, gave_way};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::checkout::card_for;
use crate::helpers::{TestApp, spawn_app};

/// An on-sale event at a venue of `rows` rows × 10 seats; returns (event id, seat ids in order).
pub async fn event_with_seats(app: &TestApp, rows: u8, extra: Value) -> (String, Vec<String>) {
    let rows: Vec<Value> = (0..rows).map(|r| json!({"label": format!("R{r}"), "seats": 10})).collect();
    let (status, venue) = app
        .post(
            "/api/v1/organizer/venues",
            json!({
            "name": "Hall", "city": "Paris", "timezone": "Europe/Paris",
            "tiers": [{"name": "Std", "price_cents": 4000, "currency": "EUR"}],
            "sections": [{"name": "Main", "tier": "Std", "rows": rows}]}),
        )
        .await;
    assert_eq!(status, 201, "{venue}");
    let mut body = json!({"venue_id": venue["id"], "title": "Hot Show", "category": "music",
        "starts_at": "2030-06-01T19:00:00Z", "sale_starts_at": "2020-01-01T00:00:00Z"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, event) = app.post("/api/v1/organizer/events", body).await;
    assert_eq!(status, 201, "{event}");
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/organizer/events/{id}/publish"), json!({})).await.0, 200);
    let seats: Vec<String> = sqlx::query_scalar(
        "SELECT seat_id::text FROM inventory WHERE event_id = $1::text::uuid ORDER BY sort_key",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    (id, seats)
}

/// A reservation that still owns its seats: paid, or held and not lapsed.
const LIVE: &str = "(r.status = 'committed' OR (r.status = 'held' AND r.expires_at > now()))";

/// Asserts the inventory invariants: each held or booked seat belongs to
/// exactly one live reservation, and every live reservation has all its seats.
pub async fn assert_consistent(app: &TestApp, event: &str) -> i64 {
    let broken: Vec<(Uuid, i32, i64)> = sqlx::query_as(&format!(
        "SELECT r.id, r.seat_count, count(i.seat_id)
         FROM reservations r LEFT JOIN inventory i ON i.hold_id = r.id AND i.status IN ('HELD', 'BOOKED')
         WHERE r.event_id = $1::text::uuid AND {LIVE}
         GROUP BY r.id, r.seat_count HAVING count(i.seat_id) <> r.seat_count"
    ))
    .bind(event)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(broken.is_empty(), "reservations missing seats (not all-or-nothing): {broken:?}");
    let doubly: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
         WHERE r.event_id = $1::text::uuid AND {LIVE} GROUP BY rs.seat_id HAVING count(*) > 1) d"
    ))
    .bind(event)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(doubly, 0, "a seat is in two live reservations");
    let (taken, claimed): (i64, i64) = sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM inventory WHERE event_id = $1::text::uuid
                 AND (status = 'BOOKED' OR (status = 'HELD' AND held_until > now()))),
                (SELECT coalesce(sum(seat_count), 0) FROM reservations r WHERE r.event_id = $1::text::uuid AND {LIVE})"
    ))
    .bind(event)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(taken, claimed, "seats taken must equal the seats of the winning reservations");
    taken
}

#[tokio::test]
async fn five_hundred_concurrent_holds_on_fifty_seats_never_share_a_seat() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 5, json!({"max_tickets_per_order": 4})).await;
    // Deterministic mix: single seats and overlapping runs of 2-3 adjacent seats.
    let mut state: u64 = 42;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let requests: Vec<Vec<String>> = (0..500)
        .map(|_| {
            let start = next() % seats.len();
            let len = [1, 1, 2, 3][next() % 4].min(seats.len() - start);
            seats[start..start + len].to_vec()
        })
        .collect();
    let (app_ref, event_ref) = (&app, &event);
    let answers = join_all(requests.iter().enumerate().map(|(i, wanted)| async move {
        let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": wanted});
        app_ref.hold(&format!("buyer-{i}"), event_ref, body).await
    }))
    .await;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut won_seats = 0;
    for ((status, body), wanted) in answers.iter().zip(&requests) {
        *by_status.entry(*status).or_default() += 1;
        match status {
            201 => {
                assert_eq!(body["seats"].as_array().unwrap().len(), wanted.len(), "all or nothing");
                won_seats += wanted.len() as i64;
            }
            409 => assert_eq!(body["error"], "seat_unavailable", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let taken = assert_consistent(&app, &event).await;
    assert_eq!(taken, won_seats);
    assert!((40..=50).contains(&taken), "most seats should sell: {taken} ({by_status:?})");
}

#[tokio::test]
async fn best_available_spreads_a_crowd_over_free_seats() {
    let app = spawn_app().await;
    let (event, _) = event_with_seats(&app, 5, json!({})).await;
    let section = app.a_section_of(&event).await;
    let (app_ref, event_ref, section_ref) = (&app, &event, &section);
    let answers = join_all((0..30).map(|i| async move {
        let body = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section_ref, "quantity": 2});
        app_ref.hold(&format!("fan-{i}"), event_ref, body).await
    }))
    .await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        answers.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"] == "seat_unavailable")),
        "{answers:?}"
    );
    assert_eq!(won, 25, "50 seats in pairs");
    assert_eq!(assert_consistent(&app, &event).await, 50);
    let (status, body) = app
        .hold(
            "late",
            &event,
            json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1}),
        )
        .await;
    assert_eq!((status, body["available_seats"].as_i64()), (409, Some(0)));
}

#[tokio::test]
async fn an_expired_hold_is_free_to_take_without_the_sweeper() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let (status, first) =
        app.hold("a", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]})).await;
    assert_eq!(status, 201);
    let (status, _) =
        app.hold("b", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]})).await;
    assert_eq!(status, 409);
    app.expire(&first).await;
    let (status, second) =
        app.hold("b", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]})).await;
    assert_eq!(status, 201, "{second}");
    let (_, old) = app
        .buyer(
            "a",
            Method::GET,
            &format!("/api/v1/reservations/{}", first["reservation_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(old["status"], "expired");
    assert_consistent(&app, &event).await;
}

#[tokio::test]
async fn the_sweeper_frees_lapsed_holds_and_their_quota() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let (_, held) = app
        .hold("a", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": &seats[..3]}))
        .await;
    app.expire(&held).await;
    let mut tx = app.db.begin().await.unwrap();
    let swept = origin_inventory::reservations::expire_lapsed(&mut tx, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(swept, 1);
    let (available, quota): (i64, i32) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM inventory WHERE event_id = $1::text::uuid AND status = 'AVAILABLE'),
                (SELECT tickets FROM buyer_tickets WHERE event_id = $1::text::uuid AND buyer_id = $2)",
    )
    .bind(&event)
    .bind(app.buyer_id("a").await)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((available, quota), (10, 0));
}

#[tokio::test]
async fn buyer_limits_hold_under_concurrency() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 4, json!({"max_tickets_per_buyer": 8})).await;
    let answers = join_all((0..10).map(|i| {
        app.hold(
            "greedy",
            &event,
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": &seats[i * 2..i * 2 + 2]}),
        )
    }))
    .await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(won, 4, "8 tickets in pairs");
    assert!(
        answers.iter().filter(|(s, _)| *s != 201).all(|(s, b)| *s == 429 && b["error"] == "limit_exceeded")
    );
    let (status, body) = app
        .hold("other", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": &seats[30..35]}))
        .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("limit_exceeded")), "5 > 4 per order");
}

#[tokio::test]
async fn the_same_client_reservation_id_returns_the_same_reservation() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0], seats[1]]});
    let answers = join_all((0..10).map(|_| app.hold("a", &event, body.clone()))).await;
    let ids: std::collections::HashSet<_> =
        answers.iter().map(|(_, b)| b["reservation_id"].clone()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1);
    assert!(answers.iter().all(|(s, _)| *s == 201 || *s == 200));
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations").fetch_one(&app.db).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_hold_extends_once_and_releases_on_demand() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({"hold_ttl_seconds": 120})).await;
    let (_, held) =
        app.hold("a", &event, json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]})).await;
    let path = format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap());
    let (status, _) = app
        .buyer("a", Method::PATCH, &format!("{path}/extend"), Some(json!({"additional_seconds": 301})))
        .await;
    assert_eq!(status, 422);
    let (status, extended) = app
        .buyer("a", Method::PATCH, &format!("{path}/extend"), Some(json!({"additional_seconds": 300})))
        .await;
    assert_eq!(status, 200, "{extended}");
    let before: chrono::DateTime<chrono::Utc> = held["expires_at"].as_str().unwrap().parse().unwrap();
    let after: chrono::DateTime<chrono::Utc> = extended["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((after - before).num_seconds(), 300);
    let (status, body) = app
        .buyer("a", Method::PATCH, &format!("{path}/extend"), Some(json!({"additional_seconds": 10})))
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_extended")));
    assert_eq!(app.buyer("b", Method::DELETE, &path, None).await.0, 404, "another buyer's hold");
    assert_eq!(app.buyer("a", Method::DELETE, &path, None).await.0, 204);
    assert_eq!(app.buyer("a", Method::DELETE, &path, None).await.0, 204, "releasing twice is harmless");
    let free: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory WHERE status = 'AVAILABLE' AND event_id = $1::text::uuid",
    )
    .bind(&event)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(free, 10);
}

#[tokio::test]
async fn bad_hold_requests_get_a_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let (other_event, other_seats) = event_with_seats(&app, 1, json!({})).await;
    let cases = [
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [Uuid::new_v4()]}),
            422,
            "unknown_seats",
        ),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [other_seats[0]]}),
            422,
            "unknown_seats",
        ),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]], "ttl_seconds": -5}),
            422,
            "invalid_request",
        ),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]], "ttl_seconds": 1e12}),
            422,
            "invalid_request",
        ),
        (json!({"client_reservation_id": "nope", "seat_ids": [seats[0]]}), 422, "invalid_request"),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": "'; DELETE FROM inventory; --"}),
            422,
            "invalid_request",
        ),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]], "extra": true}),
            422,
            "invalid_request",
        ),
        (
            json!({"client_reservation_id": Uuid::new_v4(), "tier_id": Uuid::new_v4(), "quantity": 1}),
            409,
            "seat_unavailable",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app.hold("a", &event, body.clone()).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{body} → {answer}");
    }
    let url = app.url(&format!("/api/v1/events/{event}/reservations"));
    let malformed = app
        .client
        .post(&url)
        .bearer_auth(app.session("a").await)
        .header("content-type", "application/json")
        .body("{\"seat_ids\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let anonymous = app
        .client
        .post(&url)
        .json(&json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "a hold needs a buyer session");
    let problem: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(problem["error"], "buyer_session_required");
    let (status, _) = app
        .hold(
            "a",
            &Uuid::new_v4().to_string(),
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [seats[0]]}),
        )
        .await;
    assert_eq!(status, 404);
    app.post(&format!("/api/v1/organizer/events/{other_event}/close"), json!({})).await;
    let (status, body) = app
        .hold(
            "a",
            &other_event,
            json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": [other_seats[0]]}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("sale_not_open")));
    let touched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inventory WHERE status <> 'AVAILABLE' OR version <> 0")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(touched, 0);
}

/// Requests waiting on a row lock in the test's database.
async fn lock_waits(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Another request has locked one of the last two seats and not finished:
/// best available waits for it instead of skipping the seat, so the seats
/// sell if that request lets the seat go, and the answer is exact if not.
#[tokio::test]
async fn the_last_seats_sell_while_another_request_has_one_locked() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    sqlx::query("UPDATE inventory SET status = 'BLOCKED' WHERE seat_id::text = ANY($1)")
        .bind(&seats[..8])
        .execute(&app.db)
        .await
        .unwrap();
    let section = app.a_section_of(&event).await;
    for rival_takes_it in [false, true] {
        let mut rival = app.db.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM inventory WHERE seat_id = $1::text::uuid FOR UPDATE")
            .bind(&seats[8])
            .execute(&mut *rival)
            .await
            .unwrap();
        let body = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 2});
        let fan = format!("fan-{rival_takes_it}");
        let hold = app.hold(&fan, &event, body);
        let rival_finishes = async {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while lock_waits(&app).await == 0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if rival_takes_it {
                sqlx::query("UPDATE inventory SET status = 'BLOCKED' WHERE seat_id = $1::text::uuid")
                    .bind(&seats[8])
                    .execute(&mut *rival)
                    .await
                    .unwrap();
            }
            rival.commit().await.unwrap();
        };
        let ((status, held), ()) = tokio::join!(hold, rival_finishes);
        if rival_takes_it {
            assert_eq!((status, held["available_seats"].as_i64()), (409, Some(1)), "{held}");
        } else {
            assert_eq!(status, 201, "{held}");
            assert_eq!(held["seats"].as_array().unwrap().len(), 2);
            let (status, _) = app
                .buyer(
                    "fan-false",
                    Method::DELETE,
                    &format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap()),
                    None,
                )
                .await;
            assert_eq!(status, 204);
        }
    }
}

/// The origin plans a hold with the limits it last saw; another origin (here:
/// SQL) may change them at any time, and the next hold obeys the new ones.
#[tokio::test]
async fn a_hold_obeys_limits_changed_behind_this_origins_back() {
    let app = spawn_app().await;
    let (event, seats) =
        event_with_seats(&app, 2, json!({"max_tickets_per_order": 4, "hold_ttl_seconds": 600})).await;
    let hold_of = |buyer: &'static str, quantity: usize| {
        let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": seats[..quantity]});
        let (app, event) = (&app, &event);
        async move { app.hold(buyer, event, body).await }
    };
    let set_limits = |per_order: i32, ttl: i32| {
        let (app, event) = (&app, &event);
        async move {
            sqlx::query(
                "UPDATE events SET max_tickets_per_order = $2, max_tickets_per_buyer = 50, hold_ttl_seconds = $3
                 WHERE id = $1::text::uuid",
            )
            .bind(event)
            .bind(per_order)
            .bind(ttl)
            .execute(&app.db)
            .await
            .unwrap();
        }
    };
    // Holds `quantity` seats, releases them, and says for how long they were held.
    let held_for = |buyer: &'static str, quantity: usize| {
        let hold = hold_of(buyer, quantity);
        let app = &app;
        async move {
            let (status, held) = hold.await;
            assert_eq!(status, 201, "{held}");
            let until: chrono::DateTime<chrono::Utc> = held["expires_at"].as_str().unwrap().parse().unwrap();
            let path = format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap());
            assert_eq!(app.buyer(buyer, Method::DELETE, &path, None).await.0, 204);
            (until - chrono::Utc::now()).num_seconds()
        }
    };
    // The origin learns 4 per order and 600 s.
    assert!((590..=600).contains(&held_for("a", 1).await));

    // Tightened: 3 seats are now too many, and the default hold is 120 s.
    set_limits(2, 120).await;
    let (status, refused) = hold_of("b", 3).await;
    assert_eq!((status, refused["max_per_order"].as_i64()), (422, Some(2)), "{refused}");
    assert!((110..=120).contains(&held_for("c", 2).await), "the new default hold time");

    // Loosened: what the origin last saw would refuse 6 seats; the event allows 8.
    set_limits(8, 900).await;
    assert!((890..=900).contains(&held_for("d", 6).await));
    assert_consistent(&app, &event).await;
}

/// A hold, its reservation and the order it becomes show each seat as the
/// seat map does (section, row, number, tier, price, standing or not), in
/// the venue's order whatever order they were asked for in. Class: a seat
/// described one way where it is sold and another where it is shown.
#[tokio::test]
async fn held_and_sold_seats_are_shown_as_the_seat_map_shows_them() {
    let app = spawn_app().await;
    let event = app.on_sale_event(json!({})).await;
    let id = event["id"].as_str().unwrap();
    let shown = seats_on_the_map(&app, id).await;
    assert_eq!(shown.len(), 20, "the small venue's 10 seats and 10 standing places");
    // A standing place, a second-row seat, a first-row seat: the venue's order reversed.
    let asked = [&shown[15], &shown[7], &shown[3]];
    let seat_ids: Vec<&Value> = asked.iter().map(|s| &s["seat_id"]).collect();
    let body = json!({"client_reservation_id": Uuid::new_v4(), "seat_ids": seat_ids});
    let (status, held) = app.hold("ada", id, body).await;
    assert_eq!(status, 201, "{held}");
    let expected = json!([shown[3], shown[7], shown[15]]);
    assert_eq!(held["seats"], expected);

    let path = format!("/api/v1/reservations/{}", held["reservation_id"].as_str().unwrap());
    let (status, reservation) = app.buyer("ada", Method::GET, &path, None).await;
    assert_eq!((status, &reservation["seats"]), (200, &expected));

    // Renamed or renumbered in the database itself, seats are shown anew.
    sqlx::query("UPDATE sections SET name = 'Stalls' WHERE name = 'Seated'").execute(&app.db).await.unwrap();
    sqlx::query("UPDATE seats SET number = 9 WHERE id = $1::uuid")
        .bind(shown[3]["seat_id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let shown = seats_on_the_map(&app, id).await;
    assert_eq!(
        (&shown[4]["section"], &shown[4]["number"]),
        (&json!("Stalls"), &json!(9)),
        "moved to the row's end"
    );
    let expected = json!([shown[4], shown[7], shown[15]]);
    assert_eq!(seat_ids, [&shown[15]["seat_id"], &shown[7]["seat_id"], &shown[4]["seat_id"]]);
    let (status, reservation) = app.buyer("ada", Method::GET, &path, None).await;
    assert_eq!((status, &reservation["seats"]), (200, &expected));

    let (status, order) = app.commit("ada", &held, "seats-shown", card_for("ada@example.com")).await;
    assert_eq!(status, 200, "{order}");
    let path = format!("/api/v1/orders/{}", order["order_number"].as_str().unwrap());
    let (status, fetched) = app.buyer("ada", Method::GET, &path, None).await;
    assert_eq!(status, 200, "{fetched}");
    for tickets in [&order["tickets"], &fetched["tickets"]] {
        let seats: Vec<Value> = tickets
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let fields =
                    ["seat_id", "section", "row", "number", "tier", "price_cents", "general_admission"];
                Value::Object(fields.iter().map(|f| (f.to_string(), t[*f].clone())).collect())
            })
            .collect();
        assert_eq!(Value::Array(seats), expected);
    }
}

/// Every seat of `event`'s seat map as a reservation shows a seat, in the map's order.
async fn seats_on_the_map(app: &TestApp, event: &str) -> Vec<Value> {
    let (status, map) = app.get(&format!("/api/v1/events/{event}/seatmap")).await;
    assert_eq!(status, 200, "{map}");
    let mut shown = Vec::new();
    for section in map["sections"].as_array().unwrap() {
        for row in section["rows"].as_array().unwrap() {
            for seat in row["seats"].as_array().unwrap() {
                shown.push(json!({
                    "seat_id": seat["id"], "section": section["name"], "row": row["label"],
                    "number": seat["number"], "tier": seat["tier"], "price_cents": seat["price_cents"],
                    "general_admission": section["general_admission"],
                }));
            }
        }
    }
    shown
}

/// Sells `orders` orders of `per_order` best-available seats of `section`,
/// one buyer each; returns their order numbers in selling order.
pub async fn sell_best_available(
    app: &TestApp,
    event: &str,
    section: &str,
    orders: usize,
    per_order: usize,
) -> Vec<String> {
    let mut numbers = Vec::new();
    for n in 0..orders {
        let buyer = format!("fan-{n}@example.com");
        let body =
            json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": per_order});
        let (status, hold) = app.hold(&buyer, event, body).await;
        assert_eq!(status, 201, "{hold}");
        let (status, order) = app.commit(&buyer, &hold, &format!("pay-{n}"), card_for(&buyer)).await;
        assert_eq!(status, 200, "{order}");
        numbers.push(order["order_number"].as_str().unwrap().to_owned());
    }
    numbers
}

/// The seat a best-available pick of one seat of `section` takes, and the
/// entries of the pick's index it walked (those its index conditions let
/// through: free seats, and versions of seats sold that some snapshot may
/// still see); rolled back. Plans are made beforehand.
async fn pick_one(app: &TestApp, event: &str, section: &str) -> (String, i64) {
    let mut db = app.db.acquire().await.unwrap();
    let pick = "SELECT pick_best_seats($1::text::uuid, $2::text::uuid, NULL, 1, false)";
    let mut tx = sqlx::Connection::begin(&mut *db).await.unwrap();
    sqlx::query(pick).bind(event).bind(section).execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    // The count is this backend's, unreported yet: it moves only by what
    // this transaction does.
    let returned = "SELECT pg_stat_get_xact_tuples_returned('inventory_free_by_section'::regclass)";
    let mut tx = sqlx::Connection::begin(&mut *db).await.unwrap();
    let before: i64 = sqlx::query_scalar(returned).fetch_one(&mut *tx).await.unwrap();
    let picked: Vec<Uuid> =
        sqlx::query_scalar(pick).bind(event).bind(section).fetch_one(&mut *tx).await.unwrap();
    let after: i64 = sqlx::query_scalar(returned).fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    (picked[0].to_string(), after - before)
}

#[tokio::test]
async fn best_available_walks_only_what_sold_since_its_frontier_moved_even_under_an_old_snapshot() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 20, json!({})).await;
    let section = app.a_section_of(&event).await;
    // A report's snapshot, open all along: Postgres keeps every old version
    // of the seats sold for it, so no scan can mark their index entries dead.
    let mut report = app.db.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *report).await.unwrap();
    sqlx::query("SELECT count(*) FROM inventory").execute(&mut *report).await.unwrap();
    sell_best_available(&app, &event, &section, 40, 4).await;

    let (seat, walking_the_sold) = pick_one(&app, &event, &section).await;
    assert_eq!(seat, seats[160], "the best seat left");
    assert!(advance(&app.db, 0, LOCK_WAIT).await.unwrap().moved > 0);
    let (seat, from_the_frontier) = pick_one(&app, &event, &section).await;
    assert_eq!(seat, seats[160], "the frontier moved past sold seats only");
    assert!(
        from_the_frontier * 5 < walking_the_sold,
        "{from_the_frontier} entries walked from the frontier, {walking_the_sold} from the section's first seat"
    );
    report.rollback().await.unwrap();
}

#[tokio::test]
async fn a_seat_freed_below_the_frontier_is_offered_first() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let section = app.a_section_of(&event).await;
    let orders = sell_best_available(&app, &event, &section, 5, 2).await;
    // Sold out: the frontier moves past the last seat.
    assert!(advance(&app.db, 0, LOCK_WAIT).await.unwrap().moved > 0);
    let one = || json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, body) = app.hold("late", &event, one()).await;
    assert_eq!((status, body["available_seats"].as_i64()), (409, Some(0)), "{body}");

    // The second order had the third and fourth seats.
    let refund = format!("/api/v1/organizer/orders/{}/refund", orders[1]);
    assert_eq!(app.organizer(&app.key, Method::POST, &refund, None).await.0, 200);
    for (buyer, seat) in [("late", &seats[2]), ("later", &seats[3])] {
        let (status, hold) = app.hold(buyer, &event, one()).await;
        assert_eq!(status, 201, "{hold}");
        assert_eq!(hold["seats"][0]["seat_id"].as_str(), Some(seat.as_str()), "{hold}");
    }
    assert_eq!(app.hold("latest", &event, one()).await.0, 409);
}

/// A booked seat freed as a refund frees it, in a transaction left open:
/// its event's frontiers stay locked until it ends.
async fn freed_uncommitted(
    app: &TestApp,
    event: &str,
    seat: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut refund = app.db.begin().await.unwrap();
    sqlx::query(
        "UPDATE inventory SET status = 'AVAILABLE', hold_id = NULL
         WHERE event_id = $1::text::uuid AND seat_id = $2::text::uuid AND status = 'BOOKED'",
    )
    .bind(event)
    .bind(seat)
    .execute(&mut *refund)
    .await
    .unwrap();
    refund
}

#[tokio::test]
async fn a_frontier_moved_up_from_an_older_snapshot_keeps_a_seat_freed_meanwhile() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let section = app.a_section_of(&event).await;
    sell_best_available(&app, &event, &section, 5, 2).await;
    // A refund frees the fourth seat and lowers the frontier, not yet committed...
    let refund = freed_uncommitted(&app, &event, &seats[3]).await;
    // ...while an advancer, seeing everything sold, would move it past the
    // last seat: a patient one waits for the refund's lock on the frontier.
    let advancing = tokio::spawn({
        let db = app.db.clone();
        async move { advance(&db, 0, Duration::from_secs(30)).await.unwrap() }
    });
    let waiting = "SELECT count(*) FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND query LIKE '%advance_pick_frontiers%'";
    while sqlx::query_scalar::<_, i64>(waiting).fetch_one(&app.db).await.unwrap() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refund.commit().await.unwrap();
    advancing.await.unwrap();

    let one = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, hold) = app.hold("late", &event, one).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["seats"][0]["seat_id"].as_str(), Some(seats[3].as_str()), "{hold}");
}

#[tokio::test]
async fn the_advancer_gives_way_to_a_refund_holding_a_frontier() {
    let app = spawn_app().await;
    let (event, seats) = event_with_seats(&app, 1, json!({})).await;
    let section = app.a_section_of(&event).await;
    sell_best_available(&app, &event, &section, 2, 2).await;
    let refund = freed_uncommitted(&app, &event, &seats[0]).await;
    let step = tokio::time::timeout(Duration::from_secs(10), advance(&app.db, 0, LOCK_WAIT)).await;
    let error =
        step.expect("it gives way, not waits").err().expect("the frontier is the refund's until it ends");
    assert!(gave_way(&error), "{error}");
    refund.commit().await.unwrap();
    let one = json!({"client_reservation_id": Uuid::new_v4(), "section_id": section, "quantity": 1});
    let (status, hold) = app.hold("late", &event, one).await;
    assert_eq!(hold["seats"][0]["seat_id"].as_str(), Some(seats[0].as_str()), "{status} {hold}");
}
