//! What Postgres alone makes of an order: pgbench sends the origin's own
//! order SQL, with no origin and no HTTP, and then the same three
//! transactions on bare tables. Beside the origin's rate they tell how much
//! of an order's cost is the origin's and how much the data model's.

use super::orders::BenchSale;
use super::*;

/// pgbench clients, as the reported order run's buyers.
const CLIENTS: &str = "16";
/// Seats of the bare tables: more than pgbench can sell in a run.
const BARE_SEATS: u32 = 200_000;

/// A time-ordered id (UUIDv7: milliseconds since 1970 in the first six
/// bytes, version 7), as the origin gives the rows a sale writes
/// (`origin_inventory::ids`), so pgbench's rows land in the indexes where
/// the origin's do. PostgreSQL 15 has no `uuidv7()`.
const TIME_ORDERED_ID: &str = "CREATE FUNCTION bench_time_ordered_id() RETURNS uuid LANGUAGE sql VOLATILE
    RETURN encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
        52, 1), 53, 1), 'hex')::uuid";

/// The two rows, beside `origin_rate`, the origin's orders/s at 16 buyers.
pub(super) fn rows(stack: &Stack, origin_rate: f64) -> anyhow::Result<Vec<Row>> {
    eprintln!("bench: the orders' SQL from pgbench, and on bare tables");
    stack.sql(TIME_ORDERED_ID)?;
    let ours = our_sql(stack);
    let bare = bare_tables(stack);
    stack.sql("DROP FUNCTION bench_time_ordered_id()")?;
    let (ours, bare) = (ours?, bare?);
    Ok(vec![
        Row {
            what: format!(
                "origin: orders/s, {CLIENTS} buyers, against the same orders' SQL sent by pgbench (no origin)"
            ),
            result: format!("{origin_rate:.0} orders/s"),
            baseline: format!(
                "{ours:.0} pgbench tps: an order's three calls (`hold_as_planned`, `begin_payments`, `book_paid_orders` of one order), {CLIENTS} clients, the provider's ledger left out"
            ),
            ratio: Some(origin_rate / ours),
            target: "—".into(),
        },
        Row {
            what: "Postgres: an order's SQL against the same three transactions on bare tables (pgbench)"
                .into(),
            result: format!("{ours:.0} orders/s"),
            baseline: format!(
                "{bare:.0} pgbench tps: hold a seat by its key (no WAL wait), pay, settle (seat, hold, payment, order, two outbox rows), one key per table, no trigger"
            ),
            ratio: Some(ours / bare),
            target: "—".into(),
        },
    ])
}

/// Orders per second when pgbench makes the origin's calls for a fresh
/// buyer each: a best-available seat of one of the sale's sections as a
/// buyer session holds it, its pending payment, its settle with the
/// order's answer and two notifications. The outbox delivers them as it
/// delivers the origin's. Their tickets' codes are not the origin's
/// signatures, so the orders are voided afterwards, out of the books.
fn our_sql(stack: &Stack) -> anyhow::Result<f64> {
    let sale = BenchSale::create(stack, 40)?;
    let event = &sale.event;
    let limits = stack.sql(&format!(
        "SELECT concat_ws(', ', max_tickets_per_order, max_tickets_per_buyer, hold_ttl_seconds, hold_ttl_seconds)
         FROM events WHERE id = '{event}'"
    ))?;
    let sections = sale.sections.split(',').count();
    let script = format!(
        r#"\set n random(1, 2000000000)
\set s random(1, {sections})
SELECT v.id AS hold, v.seats -> 0 ->> 'seat_id' AS seat, v.total_cents AS price
  FROM hold_as_planned('{event}', 'pgbench:' || :client_id || ':' || :n, gen_random_uuid(), bench_time_ordered_id(), {limits},
                       NULL, (string_to_array('{all}', ','))[:s]::uuid, NULL, 1, false, true, NULL) v \gset
SELECT id AS payment FROM begin_payments(ARRAY[bench_time_ordered_id()], ARRAY[:hold::uuid],
                       ARRAY['pgbench:' || :client_id || ':' || :n], ARRAY['\x00'::bytea], ARRAY['sandbox'],
                       ARRAY['pm_card_visa'], ARRAY['Ada Lovelace'], ARRAY['ada@example.com'],
                       ARRAY['pgbench:' || :client_id || ':' || :n], ARRAY[true], ARRAY[NULL::text], ARRAY[NULL::uuid],
                       ARRAY[NULL::text], ARRAY[NULL::double precision]) \gset
SELECT outcome FROM book_paid_orders(ARRAY[:payment::uuid], ARRAY['pi_pgbench_' || :n], ARRAY[bench_time_ordered_id()],
                   ARRAY['PGB-' || :client_id || '-' || :n], ARRAY[md5(:payment::text)], ARRAY[now()],
                   ARRAY[jsonb_build_object('order_number', 'PGB-' || :client_id || '-' || :n, 'status', 'paid',
                                            'total_cents', :price::bigint, 'currency', 'EUR',
                                            'tickets', jsonb_build_array(jsonb_build_object('seat_id', :seat::uuid, 'code', md5(:seat::text))))],
                   ARRAY[jsonb_build_array(
                       jsonb_build_object('kind', 'email.order_confirmed', 'payload', jsonb_build_object(
                           'to', 'ada@example.com', 'name', 'Ada Lovelace', 'order_number', 'PGB-' || :client_id || '-' || :n,
                           'order_url', '/orders/PGB-' || :client_id || '-' || :n || '/' || md5(:payment::text))),
                       jsonb_build_object('kind', 'webhook.order.created', 'payload', jsonb_build_object(
                           'event_id', '{event}', 'order_number', 'PGB-' || :client_id || '-' || :n, 'tickets', 1,
                           'total_cents', :price::bigint, 'currency', 'EUR')))],
                   ARRAY[:payment::uuid], ARRAY[bench_time_ordered_id()], ARRAY[:seat::uuid], ARRAY[:price::bigint],
                   ARRAY[md5(:seat::text)]);
"#,
        all = sale.sections,
    );
    orders::quiet_database(stack)?;
    let rate = pgbench_script(stack, &script, &["-c", CLIENTS, "-M", "prepared"]);
    stack.sql(&format!(
        "UPDATE tickets SET voided = true WHERE event_id = '{event}';
         UPDATE orders SET status = 'refunded' WHERE event_id = '{event}'"
    ))?;
    rate
}

/// Orders per second of the same three transactions on tables with one
/// key each and no trigger: a seat taken by its key (the next one) and
/// held without waiting for the disk, as the origin's holds are; a pending
/// payment; a settle booking the seat, marking hold and payment, writing
/// the order and two outbox rows. What any order of this shape costs here.
fn bare_tables(stack: &Stack) -> anyhow::Result<f64> {
    stack.sql(&format!(
        "CREATE TABLE bench_bare_seats (id bigint PRIMARY KEY, status text NOT NULL, version int NOT NULL DEFAULT 0);
         INSERT INTO bench_bare_seats SELECT g, 'AVAILABLE' FROM generate_series(1, {BARE_SEATS}) g;
         CREATE SEQUENCE bench_bare_next;
         CREATE TABLE bench_bare_holds (id uuid PRIMARY KEY, seat bigint NOT NULL, status text NOT NULL,
                                        expires_at timestamptz NOT NULL);
         CREATE TABLE bench_bare_payments (id uuid PRIMARY KEY, hold uuid NOT NULL, status text NOT NULL, answer jsonb);
         CREATE TABLE bench_bare_orders (id uuid PRIMARY KEY, hold uuid NOT NULL UNIQUE, total_cents bigint NOT NULL);
         CREATE TABLE bench_bare_outbox (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL)"
    ))?;
    stack.sql("VACUUM ANALYZE bench_bare_seats")?;
    let script = r#"WITH next AS (SELECT nextval('bench_bare_next') AS id, set_config('synchronous_commit', 'off', true)),
     seat AS (UPDATE bench_bare_seats s SET status = 'HELD', version = s.version + 1 FROM next
              WHERE s.id = next.id AND s.status = 'AVAILABLE' RETURNING s.id)
INSERT INTO bench_bare_holds SELECT bench_time_ordered_id(), id, 'held', now() + interval '10 minutes' FROM seat
RETURNING id AS hold, seat \gset
INSERT INTO bench_bare_payments VALUES (bench_time_ordered_id(), :hold::uuid, 'pending') RETURNING id AS payment \gset
WITH seat AS (UPDATE bench_bare_seats SET status = 'BOOKED', version = version + 1
              WHERE id = :seat::bigint AND status = 'HELD' RETURNING id),
     hold AS (UPDATE bench_bare_holds SET status = 'committed' WHERE id = :hold::uuid),
     paid AS (UPDATE bench_bare_payments SET status = 'succeeded',
                     answer = jsonb_build_object('hold', :hold::uuid, 'status', 'paid') WHERE id = :payment::uuid),
     ordered AS (INSERT INTO bench_bare_orders SELECT bench_time_ordered_id(), :hold::uuid, 5000 FROM seat),
     told AS (INSERT INTO bench_bare_outbox (kind, payload)
              VALUES ('email', jsonb_build_object('hold', :hold::uuid)), ('webhook', jsonb_build_object('hold', :hold::uuid)))
SELECT count(*) FROM seat;
"#;
    let rate = pgbench_script(stack, script, &["-c", CLIENTS, "-M", "prepared"]);
    stack.sql(
        "DROP TABLE bench_bare_seats, bench_bare_holds, bench_bare_payments, bench_bare_orders, bench_bare_outbox;
         DROP SEQUENCE bench_bare_next",
    )?;
    rate
}
