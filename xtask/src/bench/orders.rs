//! Whole orders straight at the origin (buyer session, hold, pay) and
//! through the edge (join, admitted, hold, pay), what each costs Postgres
//! and the machine, and whether the outbox keeps up with them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// Buyers at once, as in the issue's side-by-side table.
const CONCURRENCY: [u32; 3] = [1, 16, 64];
/// Buyers at once through the edge, the table's two rows for it.
const THROUGH_EDGE: [u32; 2] = [16, 64];
/// The concurrency whose Postgres work and CPU per order are reported.
const REPORTED: u32 = 16;

pub(super) fn rows(
    root: &Path,
    stack: &Stack,
    ceilings: &Ceilings,
    verdict: &mut Verdict,
) -> anyhow::Result<Vec<Row>> {
    let ceiling = ceilings.hold_cycles;
    stack.sql("DROP TABLE IF EXISTS bench_inventory, bench_seats")?;
    // Warm-up: the origin's pooled connections prepare their statements
    // and Postgres's backends fill their caches, as they long have in a
    // running origin.
    let sale = BenchSale::create(stack, 40)?;
    run_orders(root, stack, &sale, &Route::Origin, 16, "3")?;
    let started = stack.sql("SELECT now()")?;
    let mut rows = Vec::new();
    let mut straight = Vec::new();
    // Where the SQL-alone rows go: after the reported run's own.
    let mut sql_alone_at = 0;
    for buyers in CONCURRENCY {
        eprintln!("bench: orders straight at the origin, {buyers} buyers");
        let sale = BenchSale::create(stack, 40)?;
        let measured = Measured::run(root, stack, &sale, &Route::Origin, buyers)?;
        let run = &measured.run;
        verdict.passed &= run.passed();
        straight.push((buyers, run.rate));
        rows.push(Row {
            what: format!("origin: orders/s, {buyers} buyers (session + hold + pay, fresh buyer each)"),
            result: run.mark(run.summary()),
            baseline: format!("{ceiling:.0} pgbench tps, one seat's hold + release without triggers"),
            ratio: Some(run.rate / ceiling),
            target: if buyers == REPORTED { "≥ 1,500 orders/s, p99 < 100 ms" } else { "—" }.into(),
        });
        if buyers == REPORTED {
            rows.push(against_issue_yardstick(run.rate, ceilings.single_updates));
            rows.extend(measured.cost_rows("origin", buyers));
            sql_alone_at = rows.len();
        }
    }
    let peak_rate = straight.iter().map(|(_, rate)| *rate).fold(0.0, f64::max);
    let runs_ended = stack.sql("SELECT now()")?;
    rows.extend(outbox_rows(stack, &started, &runs_ended, peak_rate)?);
    // The runs through the edge start as those straight at the origin did,
    // with the outbox caught up, and the whole sales after them as well.
    let started = stack.sql("SELECT now()")?;
    rows.extend(through_edge_rows(root, stack, &straight, verdict)?);
    outbox_caught_up(stack, &started)?;
    rows.extend(sell_out_rows(root, stack, verdict)?);
    // Last, so that its orders' messages delay no other measurement.
    let reported = straight.iter().find(|(buyers, _)| *buyers == REPORTED).map_or(0.0, |(_, rate)| *rate);
    let started = stack.sql("SELECT now()")?;
    let sql_alone = order_sql::rows(stack, reported)?;
    rows.splice(sql_alone_at..sql_alone_at, sql_alone);
    outbox_caught_up(stack, &started)?;
    Ok(rows)
}

/// Issue 16 set its goal of 1,500 orders/s on this machine when pgbench made
/// 13,355 single-row UPDATEs per second on it; this VM's speed has varied
/// more than threefold since. The same pgbench in the same run scales the goal.
fn against_issue_yardstick(orders: f64, single_updates: f64) -> Row {
    const GOAL_ORDERS: f64 = 1500.0;
    const UPDATES_WHEN_SET: f64 = 13355.0;
    Row {
        what: format!("origin: orders/s, {REPORTED} buyers, against issue 16's own yardstick"),
        result: format!("{orders:.0} orders/s"),
        baseline: format!(
            "{single_updates:.0} pgbench tps, plain single-row `UPDATE … WHERE seat_id = $1 AND status = 'AVAILABLE'`, 16 clients, no triggers (13,355 when the goal was set)"
        ),
        ratio: Some(orders / single_updates),
        target: format!(
            "≥ {:.1}% (1,500 orders/s against 13,355), i.e. ≥ {:.0} orders/s today",
            GOAL_ORDERS / UPDATES_WHEN_SET * 100.0,
            GOAL_ORDERS / UPDATES_WHEN_SET * single_updates
        ),
    }
}

/// The sale starts on a quiet database, as an on-sale does: nothing is
/// left for autovacuum to do during the run (each run's event inserts
/// 80,000 rows, which would otherwise start an autovacuum of `inventory`
/// at some moment of a later run, and its reads count as the orders'),
/// and it starts right after a checkpoint. The first change to a page
/// after a checkpoint writes the whole page to the WAL, so what a run
/// writes would otherwise depend on when the last checkpoint happened to
/// fall; a sale longer than a checkpoint's interval pays this at each one.
pub(super) fn quiet_database(stack: &Stack) -> anyhow::Result<()> {
    stack.sql("VACUUM ANALYZE")?;
    stack.sql("CHECKPOINT").map(drop)
}

/// Waits (at most five minutes) until the outbox has delivered what was
/// written `since`; returns how many messages are still undelivered.
fn outbox_caught_up(stack: &Stack, since: &str) -> anyhow::Result<String> {
    let undelivered =
        format!("SELECT count(*) FROM outbox WHERE created_at >= '{since}' AND delivered_at IS NULL");
    for _ in 0..300 {
        if stack.sql(&undelivered)? == "0" {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    stack.sql(&undelivered)
}

/// Whole orders as a visitor of a queue-protected sale makes them, every
/// request through the edge host: join, admitted, hold and pay with the
/// access token; beside the same concurrency straight at the origin.
fn through_edge_rows(
    root: &Path,
    stack: &Stack,
    straight: &[(u32, f64)],
    verdict: &mut Verdict,
) -> anyhow::Result<Vec<Row>> {
    // Made before the edge starts, so that its first look at each event
    // finds the waiting room on.
    let warm_up = BenchSale::create(stack, 40)?.with_waiting_room(stack)?;
    let sales = THROUGH_EDGE
        .iter()
        .map(|_| BenchSale::create(stack, 40)?.with_waiting_room(stack))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sales_in_turns = SalesInTurns {
        straight: BenchSale::create(stack, 40)?,
        through_edge: BenchSale::create(stack, 40)?.with_waiting_room(stack)?,
    };
    // Every buyer here comes from one address, so the per-address join
    // limit is off, as for the edge rows; the flash sale runs with it on.
    let edge = Edge::start(
        root,
        free_port()?,
        &stack.origin.url(),
        &stack.upstash,
        &stack.keys,
        &NO_JOIN_LIMIT,
        &stack.logs,
    )?;
    let route = Route::Edge(&edge);
    run_orders(root, stack, &warm_up, &route, 16, "3")?;
    let mut rows = Vec::new();
    for (buyers, sale) in THROUGH_EDGE.into_iter().zip(sales) {
        eprintln!("bench: orders through the edge, {buyers} buyers");
        let measured = Measured::run(root, stack, &sale, &route, buyers)?;
        let run = &measured.run;
        verdict.passed &= run.passed();
        let direct = straight.iter().find(|(b, _)| *b == buyers).map_or(0.0, |(_, rate)| *rate);
        rows.push(Row {
            what: format!(
                "through the edge: orders/s, {buyers} buyers (join → admitted → hold → pay, fresh visitor each)"
            ),
            result: run.mark(run.summary()),
            baseline: format!(
                "{direct:.0} orders/s straight at the origin, {buyers} buyers, measured minutes before"
            ),
            ratio: Some(run.rate / direct.max(1e-9)),
            target: "— (in turns below)".into(),
        });
        if buyers == REPORTED {
            rows.extend(measured.cost_rows("through the edge", buyers));
        }
        rows.push(sales_in_turns.compare(root, stack, &route, buyers, verdict)?);
    }
    Ok(rows)
}

/// A sale straight at the origin and one behind a waiting room, for
/// orders taken in turns.
struct SalesInTurns {
    straight: BenchSale,
    through_edge: BenchSale,
}

impl SalesInTurns {
    /// Orders through the edge against orders straight at the origin,
    /// taken in turns as the edge host's own rows are (`in_turns`): the two
    /// runs above are minutes apart, and this VM's speed drifts by tens of
    /// percent in minutes. The rounds alternate which route goes first.
    fn compare(
        &self,
        root: &Path,
        stack: &Stack,
        edge: &Route,
        buyers: u32,
        verdict: &mut Verdict,
    ) -> anyhow::Result<Row> {
        eprintln!("bench: orders through the edge and straight at the origin in turns, {buyers} buyers");
        let (mut straight, mut through_edge) = (Vec::new(), Vec::new());
        for round in 0..TURNS {
            for edge_now in [round % 2 == 1, round % 2 == 0] {
                let (sale, route, rates) = if edge_now {
                    (&self.through_edge, edge, &mut through_edge)
                } else {
                    (&self.straight, &Route::Origin, &mut straight)
                };
                quiet_database(stack)?;
                let run = run_orders(root, stack, sale, route, buyers, TURN_SECONDS)?;
                verdict.passed &= run.passed();
                rates.push(run.rate);
            }
        }
        let (straight, through_edge) = (median(straight), median(through_edge));
        Ok(Row {
            what: format!(
                "through the edge against straight at the origin, in turns, {buyers} buyers (orders/s)"
            ),
            result: format!("{through_edge:.0} through the edge"),
            baseline: format!(
                "{straight:.0} straight at the origin; medians of {TURNS} runs of {TURN_SECONDS} s each way, in turns"
            ),
            ratio: Some(through_edge / straight.max(1e-9)),
            target: "≥ 60% of straight at the origin".into(),
        })
    }
}

/// Where the order client sends its buyers.
enum Route<'a> {
    /// Straight at the origin, each buyer with a buyer session.
    Origin,
    /// Through the edge host, each visitor through the event's waiting room.
    Edge(&'a Edge),
}

impl Route<'_> {
    fn url(&self, stack: &Stack) -> String {
        match self {
            Route::Origin => stack.origin.url(),
            Route::Edge(edge) => edge.url(),
        }
    }

    fn flags(&self) -> &'static [&'static str] {
        match self {
            Route::Origin => &[],
            Route::Edge(_) => &["--through-edge"],
        }
    }
}

/// One order run with what it cost Postgres and the machine.
struct Measured {
    run: OrderRun,
    spent: PgCounters,
    activity: Averages,
    cpu: CpuTime,
    /// What the run wrote, or why its WAL could not be read.
    wal: Result<WalRecords, String>,
}

impl Measured {
    fn run(root: &Path, stack: &Stack, sale: &BenchSale, route: &Route, buyers: u32) -> anyhow::Result<Self> {
        quiet_database(stack)?;
        let before = PgCounters::read(stack)?;
        let wal_from = stack.sql("SELECT pg_current_wal_lsn()")?;
        let activity = Activity::sample(stack);
        let cpu_before = CpuTime::read(stack, route)?;
        let run = run_orders(root, stack, sale, route, buyers, SECONDS)?;
        let cpu = CpuTime::read(stack, route)?.since(&cpu_before);
        let activity = activity.stop();
        let spent = PgCounters::read(stack)?.since(&before);
        let wal_to = stack.sql("SELECT pg_current_wal_lsn()")?;
        // A checkpoint may have recycled the run's first segments: a
        // missing row, not a failed bench.
        let wal = stack
            .postgres
            .wal_records(&wal_from, &wal_to)
            .map(|stats| WalRecords::count(&stats))
            .map_err(|e| format!("{e:#}"));
        Ok(Self { run, spent, activity, cpu, wal })
    }

    /// Postgres's work, what it wrote, and the machine's CPU per order.
    fn cost_rows(&self, prefix: &str, buyers: u32) -> [Row; 3] {
        let (spent, activity, cpu) = (&self.spent, &self.activity, &self.cpu);
        let orders = self.run.orders;
        let per = orders.max(1.0);
        // Linux counts CPU time in ticks of 1/100 s.
        let per_order_us = |ticks: u64| ticks as f64 * 10_000.0 / per;
        let mut parts = vec![
            format!("origin {:.0} µs", per_order_us(cpu.origin)),
            format!("Postgres {:.0} µs", per_order_us(cpu.postgres)),
        ];
        if let Some(edge) = cpu.edge {
            parts.push(format!("edge host {:.0} µs", per_order_us(edge.host)));
            parts.push(format!("Upstash gateway and Redis {:.0} µs", per_order_us(edge.queue_store)));
        }
        parts.push(format!(
            "the outbox's receivers (local SMTP server, webhook receiver) {:.0} µs",
            per_order_us(cpu.receivers)
        ));
        parts.push(format!(
            "everything else (the order client, kernel) {:.0} µs",
            per_order_us(cpu.machine.saturating_sub(cpu.accounted()))
        ));
        [
            Row {
                what: format!("{prefix}: Postgres work per order, {buyers} buyers"),
                result: format!(
                    "{:.1} transactions, {:.1} WAL flushes, {:.0} buffer reads; backends idle in transaction {:.1} of {:.1} busy",
                    spent.transactions / per,
                    spent.wal_syncs / per,
                    spent.buffers / per,
                    activity.idle_in_transaction,
                    activity.busy,
                ),
                baseline: format!(
                    "{orders:.0} orders; background workers included; the sandbox payment provider's own \
                     database {:.1} transactions more",
                    spent.provider_transactions / per
                ),
                ratio: None,
                target: "≤ 3 transactions, ≤ 2 WAL flushes, ≤ 60 buffer reads, none idle in transaction"
                    .into(),
            },
            Row {
                what: format!(
                    "{prefix}: what Postgres wrote per order, {buyers} buyers (records of its WAL)"
                ),
                result: match &self.wal {
                    Ok(wal) => wal.per_order(per),
                    Err(e) => format!("the run's WAL could not be read: {e}"),
                },
                baseline: "pg_waldump of the run's WAL; background workers included".into(),
                ratio: None,
                // Each index entry descends its index: two or three buffers.
                target: "— (the buffer reads above follow the index entries)".into(),
            },
            Row {
                what: format!("{prefix}: CPU per order, {buyers} buyers"),
                result: parts.join(", "),
                baseline: format!("{:.0} µs of machine CPU per order", per_order_us(cpu.machine)),
                ratio: None,
                target: "—".into(),
            },
        ]
    }
}

/// The rows and index entries Postgres wrote, counted from the records of
/// its WAL (`pg_waldump --stats=record`): deterministic for a given schema
/// and code, where rates and CPU wander with this VM.
#[derive(Debug, Default, PartialEq)]
struct WalRecords {
    rows_inserted: f64,
    /// Updates, of which `hot_updates` needed no new index entries.
    rows_updated: f64,
    hot_updates: f64,
    index_entries: f64,
    /// Rows locked (`FOR UPDATE`, or `FOR KEY SHARE` by a foreign key's check).
    row_locks: f64,
    /// Locks of one row shared by transactions under way at once.
    multixacts: f64,
    /// Bytes of WAL, of which `full_page_bytes` are whole pages written
    /// at their first change after a checkpoint.
    bytes: f64,
    full_page_bytes: f64,
}

impl WalRecords {
    fn count(stats: &str) -> Self {
        let mut wal = Self::default();
        for line in stats.lines() {
            let mut words = line.split_whitespace();
            let (Some(kind), Some(Ok(count))) = (words.next(), words.next().map(str::parse::<f64>)) else {
                continue;
            };
            // `+INIT`: the same record, on a page it starts.
            match kind.trim_end_matches("+INIT") {
                "Heap/INSERT" => wal.rows_inserted += count,
                "Heap/UPDATE" => wal.rows_updated += count,
                "Heap/HOT_UPDATE" => {
                    wal.rows_updated += count;
                    wal.hot_updates += count;
                }
                // An entry added to a leaf, or to a deduplicated one's list.
                "Btree/INSERT_LEAF" | "Btree/INSERT_POST" => wal.index_entries += count,
                "Heap/LOCK" | "Heap2/LOCK_UPDATED" => wal.row_locks += count,
                "MultiXact/CREATE_ID" => wal.multixacts += count,
                "Total" => {
                    // The records' bytes, the whole pages', both's; each
                    // followed by its share in brackets.
                    let sizes: Vec<f64> = words.filter_map(|word| word.parse().ok()).collect();
                    if let [_, full_page_bytes, all_bytes] = sizes[..] {
                        wal.bytes = all_bytes;
                        wal.full_page_bytes = full_page_bytes;
                    }
                }
                _ => {}
            }
        }
        wal
    }

    fn per_order(&self, orders: f64) -> String {
        format!(
            "{:.1} rows inserted, {:.1} updated ({:.1} of them HOT), {:.1} index entries, {:.1} row locks ({:.1} shared: multixacts); {:.1} kB of WAL, {:.1} kB of it whole pages",
            self.rows_inserted / orders,
            self.rows_updated / orders,
            self.hot_updates / orders,
            self.index_entries / orders,
            self.row_locks / orders,
            self.multixacts / orders,
            self.bytes / orders / 1000.0,
            self.full_page_bytes / orders / 1000.0,
        )
    }
}

/// Seats of the whole sales: one section of 40 rows × 50.
const SELL_OUT_SEATS: f64 = 2000.0;

/// Whole sales to the last seat, 16 buyers: whether the last tenth of the
/// orders sells as fast as the first, whether a long snapshot (a report, a
/// `pg_dump`) open all along slows the sale, and whether a crowd holding
/// better seats, unpaid, does.
fn sell_out_rows(root: &Path, stack: &Stack, verdict: &mut Verdict) -> anyhow::Result<Vec<Row>> {
    eprintln!("bench: a whole sale to the last seat");
    let plain = sell_out(root, stack, &BenchSale::create(stack, 1)?)?;
    eprintln!("bench: a whole sale with a REPEATABLE READ snapshot open");
    let mut snapshot = Command::new("psql")
        .args([&stack.databases.sales, "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    writeln!(
        snapshot.stdin.as_mut().context("psql's stdin")?,
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM inventory;"
    )?;
    let under_snapshot = BenchSale::create(stack, 1).and_then(|sale| sell_out(root, stack, &sale));
    // Ending its input ends the session, and the snapshot with it.
    drop(snapshot.stdin.take());
    snapshot.wait()?;
    let under_snapshot = under_snapshot?;
    eprintln!("bench: a whole sale behind a crowd holding better seats, unpaid");
    let behind_crowd = sell_out_behind_crowd(root, stack)?;
    let mut rows = Vec::new();
    for (run, what, baseline, ratio, target) in [
        (
            &plain,
            "origin: a whole sale, 2,000 seats, 16 buyers (orders/s overall and in each tenth of the orders)",
            format!("{:.0} orders/s in the first tenth", plain.first_tenth()),
            plain.last_tenth() / plain.first_tenth().max(1e-9),
            "flat: last tenth ≥ 90% of the first",
        ),
        (
            &under_snapshot,
            "origin: the same sale with a REPEATABLE READ snapshot open all along",
            format!("{:.0} orders/s without the snapshot", plain.run.rate),
            under_snapshot.run.rate / plain.run.rate.max(1e-9),
            "≥ 90% of the sale without it",
        ),
        (
            &behind_crowd,
            "origin: the same sale behind a crowd: 2,000 better seats of its section held by buyers who have not paid",
            format!("{:.0} orders/s without the crowd", plain.run.rate),
            behind_crowd.run.rate / plain.run.rate.max(1e-9),
            "≥ 90% of the sale without it",
        ),
    ] {
        let sold_all = run.run.orders == SELL_OUT_SEATS;
        verdict.passed &= run.run.passed() && sold_all;
        let sold = if sold_all { "all sold".to_owned() } else { format!("ONLY {:.0} SOLD", run.run.orders) };
        rows.push(Row {
            what: what.into(),
            result: run.run.mark(format!(
                "{:.0} overall, by tenth {}; {sold} in {:.1} s",
                run.run.rate,
                run.tenths.iter().map(|rate| format!("{rate:.0}")).collect::<Vec<_>>().join(" · "),
                run.seconds
            )),
            baseline,
            ratio: Some(ratio),
            target: target.into(),
        });
    }
    Ok(rows)
}

/// One whole sale: `order-load --until-sold-out`.
struct SellOut {
    run: OrderRun,
    tenths: Vec<f64>,
    seconds: f64,
}

impl SellOut {
    fn first_tenth(&self) -> f64 {
        self.tenths.first().copied().unwrap_or(0.0)
    }

    fn last_tenth(&self) -> f64 {
        self.tenths.last().copied().unwrap_or(0.0)
    }
}

fn sell_out(root: &Path, stack: &Stack, sale: &BenchSale) -> anyhow::Result<SellOut> {
    let (run, result) = order_load(root, sale, &["--until-sold-out"], &stack.origin.url(), 16, "120")?;
    let tenths =
        result["tenths_per_second"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
    Ok(SellOut { run, tenths, seconds: result["seconds"].as_f64().unwrap_or(0.0) })
}

/// The same sale behind a crowd: the best 2,000 seats of a section of
/// 4,000 are held first by buyers who have not paid (in an on-sale,
/// thousands type their card numbers at once), then the other 2,000 are
/// sold to the last seat; every pick starts behind the crowd's holds.
fn sell_out_behind_crowd(root: &Path, stack: &Stack) -> anyhow::Result<SellOut> {
    let sale = BenchSale::create_sized(stack, 1, 2 * SECTION_ROWS)?;
    let crowd = format!("--hold-only={SELL_OUT_SEATS}");
    let (held, _) = order_load(root, &sale, &[&crowd], &stack.origin.url(), 16, "120")?;
    if held.orders != SELL_OUT_SEATS {
        bail!("the crowd held {} seats of {SELL_OUT_SEATS}", held.orders);
    }
    sell_out(root, stack, &sale)
}

/// Rows of 50 seats in a section of a bench sale.
const SECTION_ROWS: u32 = 40;

/// A venue of `sections` × 40 rows × 50 seats (40 sections: more than a
/// run can sell) and an event on sale there without a waiting room;
/// created before the run so that Postgres's counters see orders only.
pub(super) struct BenchSale {
    pub(super) event: String,
    /// Comma-separated section ids.
    pub(super) sections: String,
}

impl BenchSale {
    pub(super) fn create(stack: &Stack, sections: u32) -> anyhow::Result<Self> {
        Self::create_sized(stack, sections, SECTION_ROWS)
    }

    /// With `rows` rows of 50 seats in each section.
    fn create_sized(stack: &Stack, sections: u32, rows: u32) -> anyhow::Result<Self> {
        let rows: Vec<Value> =
            (1..=rows).map(|r| serde_json::json!({"label": format!("R{r}"), "seats": 50})).collect();
        let sections: Vec<Value> = (1..=sections)
            .map(|s| serde_json::json!({"name": format!("S{s}"), "tier": "Standard", "rows": rows}))
            .collect();
        let venue: Value = serde_json::from_str(
            &stack.organizer(
                "POST",
                "/api/v1/organizer/venues",
                &serde_json::json!({
                    "name": "Bench Stadium", "city": "Berlin", "timezone": "Europe/Berlin",
                    "tiers": [{"name": "Standard", "price_cents": 5000, "currency": "EUR"}],
                    "sections": sections,
                })
                .to_string(),
            )?,
        )?;
        // In 30 days; on sale from yesterday to tomorrow.
        let dates = stack.sql(
            "SELECT string_agg(to_char((now() + make_interval(days => d)) AT TIME ZONE 'UTC',
                                       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '|')
             FROM unnest(ARRAY[30, -1, 1]) AS d",
        )?;
        let [starts, sale_starts, sale_ends] = dates.split('|').collect::<Vec<_>>()[..] else {
            bail!("unexpected dates: {dates}")
        };
        let event: Value = serde_json::from_str(
            &stack.organizer(
                "POST",
                "/api/v1/organizer/events",
                &serde_json::json!({
                    "venue_id": venue["id"], "title": "Bench orders", "category": "music",
                    "starts_at": starts, "sale_starts_at": sale_starts, "sale_ends_at": sale_ends,
                })
                .to_string(),
            )?,
        )?;
        let event = event["id"].as_str().context("a created event has an id")?.to_owned();
        stack.organizer("POST", &format!("/api/v1/organizer/events/{event}/publish"), "")?;
        let sections = venue["sections"]
            .as_array()
            .context("a created venue lists its sections")?
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self { event, sections })
    }

    /// Puts the sale behind a waiting room that admits every visitor on
    /// arrival: an order pays for the join, the admission, the gate and the
    /// session's end, and never waits in line.
    fn with_waiting_room(self, stack: &Stack) -> anyhow::Result<Self> {
        stack.organizer(
            "PUT",
            &format!("/api/v1/organizer/events/{}/queue", self.event),
            r#"{"enabled": true, "new_users_per_minute": 1000000, "total_active_users": 100000,
                "session_duration_seconds": 600, "pow_difficulty": 0}"#,
        )?;
        Ok(self)
    }
}

/// What `order-load` (the native order client in `load-tests/`) measured.
struct OrderRun {
    orders: f64,
    /// Orders that stopped short, at any step.
    refused: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl OrderRun {
    /// Every step answered as expected, but for a hold or payment in a hundred.
    fn passed(&self) -> bool {
        self.refused <= 0.01 * (self.orders + self.refused)
    }

    /// `result`, marked if too many orders stopped short.
    fn mark(&self, result: String) -> String {
        if self.passed() { result } else { format!("{result} — {:.0} ORDERS REFUSED", self.refused) }
    }

    fn summary(&self) -> String {
        format!("{:.0} (order p50 {:.1} ms, p99 {:.1} ms)", self.rate, self.p50_ms, self.p99_ms)
    }
}

fn run_orders(
    root: &Path,
    stack: &Stack,
    sale: &BenchSale,
    route: &Route,
    buyers: u32,
    seconds: &str,
) -> anyhow::Result<OrderRun> {
    order_load(root, sale, route.flags(), &route.url(stack), buyers, seconds).map(|(run, _)| run)
}

/// `order-load` with `flags` against `url`: its figures, and its whole answer.
fn order_load(
    root: &Path,
    sale: &BenchSale,
    flags: &[&str],
    url: &str,
    buyers: u32,
    seconds: &str,
) -> anyhow::Result<(OrderRun, Value)> {
    let out = output(Command::new(binary_dir(root).join("order-load")).args(flags).args([
        url,
        &sale.event,
        &sale.sections,
        &buyers.to_string(),
        seconds,
    ]))?;
    let result: Value = serde_json::from_str(&out).with_context(|| format!("order-load said: {out}"))?;
    let number = |value: &Value| value.as_f64().unwrap_or(0.0);
    let refused = result["refused"].as_object().into_iter().flatten().map(|(_, n)| number(n)).sum();
    if refused > 0.0 {
        eprintln!("bench: orders refused with {buyers} buyers: {}", result["refused"]);
    }
    let run = OrderRun {
        orders: number(&result["orders"]),
        refused,
        rate: number(&result["orders_per_second"]),
        p50_ms: number(&result["p50_ms"]),
        p99_ms: number(&result["p99_ms"]),
    };
    Ok((run, result))
}

/// Messages written at once to time the outbox's capacity: at the rates
/// seen here (1,000–3,000 messages/s) several seconds of sending.
const CAPACITY_PROBE: u32 = 20_000;

/// How the outbox kept pace with what the order runs straight at the
/// origin wrote, sharing the two cores with them; then its capacity.
/// A rate averaged over the runs can never pass the rate messages were
/// written at, so the capacity comes from a backlog of its own: copies of
/// the runs' messages (new ids, so new `Message-ID`s and `webhook-id`s:
/// no receiver sees a message twice), written in one statement and sent to
/// the same receivers with the machine to itself.
fn outbox_rows(stack: &Stack, since: &str, runs_ended: &str, peak_orders: f64) -> anyhow::Result<Vec<Row>> {
    let left = outbox_caught_up(stack, since)?;
    let runs_messages = format!("outbox WHERE created_at >= '{since}' AND created_at <= '{runs_ended}'");
    let [written, kept_pace, lag_p99] = numbers(&stack.sql(&format!(
        "SELECT count(*), count(*) FILTER (WHERE delivered_at <= '{runs_ended}'),
                coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)), 0)
         FROM {runs_messages}"
    ))?)?;
    let commit_rate = format!("{peak_orders:.0} orders/s at peak, 2 messages each");
    let during = Row {
        what: "origin: outbox delivery during the order runs straight at the origin (SMTP on loopback)"
            .into(),
        result: format!(
            "lag p99 {lag_p99:.1} s; {kept_pace:.0} of the {written:.0} messages the runs wrote delivered by their end, {left} not delivered after 5 min"
        ),
        baseline: commit_rate.clone(),
        ratio: None,
        target: "lag p99 < 10 s".into(),
    };
    let copied_at = stack.sql("SELECT now()")?;
    stack.sql(&format!(
        "INSERT INTO outbox (kind, payload) SELECT kind, payload FROM {runs_messages} ORDER BY id LIMIT {CAPACITY_PROBE}"
    ))?;
    let not_sent = outbox_caught_up(stack, &copied_at)?;
    let [copies, span] = numbers(&stack.sql(&format!(
        "SELECT count(*), coalesce(extract(epoch FROM max(delivered_at) - min(created_at)), 0)
         FROM outbox WHERE created_at >= '{copied_at}' AND delivered_at IS NOT NULL"
    ))?)?;
    let capacity = copies / span.max(0.001);
    let capacity = Row {
        what: "origin: outbox capacity, copies of the runs' messages written at once (the machine to itself)"
            .into(),
        result: format!(
            "{capacity:.0} messages/s, {copies:.0} messages in {span:.1} s, {not_sent} not delivered after 5 min"
        ),
        baseline: commit_rate,
        ratio: Some(capacity / (2.0 * peak_orders.max(1.0))),
        target: "≥ 200% (2× the commit rate)".into(),
    };
    Ok(vec![during, capacity])
}

/// The `|`-separated numbers of a one-row `psql` answer.
fn numbers<const N: usize>(answer: &str) -> anyhow::Result<[f64; N]> {
    let parsed: Vec<f64> = answer
        .split('|')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("unexpected figures: {answer}"))?;
    parsed.try_into().map_err(|_| anyhow::anyhow!("expected {N} figures: {answer}"))
}

/// The books after the order runs, for `cargo xtask bench origin`.
pub(super) fn check(root: &Path, stack: &Stack, verdict: &mut Verdict) -> anyhow::Result<String> {
    let (balanced, table) = invariant_check(root, stack)?;
    verdict.passed &= balanced;
    Ok(table)
}

/// CPU ticks spent so far by the origin, by Postgres (the postmaster and
/// its children), by the edge when orders go through it, and by the whole
/// machine (busy time of every core).
struct CpuTime {
    origin: u64,
    postgres: u64,
    /// The outbox's receivers: the local SMTP server and webhook receiver,
    /// stand-ins for a mail relay and the organizer's server elsewhere.
    receivers: u64,
    edge: Option<EdgeCpu>,
    machine: u64,
}

#[derive(Clone, Copy)]
struct EdgeCpu {
    host: u64,
    /// The Upstash gateway and the Redis behind it.
    queue_store: u64,
}

impl CpuTime {
    fn read(stack: &Stack, route: &Route) -> anyhow::Result<Self> {
        let postmaster = stack.postgres.pid()?;
        let mut postgres = cpu_ticks(postmaster)?;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // The parent's pid is the second field after the command name.
            let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent.and_then(|p| p.parse::<u32>().ok()) == Some(postmaster) {
                postgres += cpu_ticks(pid).unwrap_or(0);
            }
        }
        let edge = match route {
            Route::Origin => None,
            Route::Edge(edge) => Some(EdgeCpu {
                host: cpu_ticks(edge.process.pid())?,
                queue_store: cpu_ticks(stack.upstash.process.pid())? + cpu_ticks(stack.redis.process.pid())?,
            }),
        };
        let total = std::fs::read_to_string("/proc/stat")?;
        // cpu  user nice system idle iowait irq softirq steal …
        let fields: Vec<u64> = total
            .lines()
            .next()
            .context("a cpu line in /proc/stat")?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // Busy time: all but idle and iowait (guest time is already in user).
        let machine =
            fields.iter().take(8).enumerate().filter(|(i, _)| ![3, 4].contains(i)).map(|(_, t)| t).sum();
        let receivers = cpu_ticks(stack.smtp.process.pid())? + cpu_ticks(stack.webhook_receiver.pid())?;
        Ok(Self { origin: cpu_ticks(stack.origin.process.pid())?, postgres, receivers, edge, machine })
    }

    fn since(&self, before: &Self) -> Self {
        let edge = self.edge.zip(before.edge).map(|(now, then)| EdgeCpu {
            host: now.host - then.host,
            queue_store: now.queue_store - then.queue_store,
        });
        Self {
            origin: self.origin - before.origin,
            postgres: self.postgres.saturating_sub(before.postgres),
            receivers: self.receivers - before.receivers,
            edge,
            machine: self.machine - before.machine,
        }
    }

    /// What the processes named above spent.
    fn accounted(&self) -> u64 {
        self.origin
            + self.postgres
            + self.receivers
            + self.edge.map_or(0, |edge| edge.host + edge.queue_store)
    }
}

/// Postgres's cumulative counters for the bench database.
struct PgCounters {
    transactions: f64,
    buffers: f64,
    wal_syncs: f64,
    /// The sandbox payment provider's, in its own database: another
    /// company's work, shown beside ours.
    provider_transactions: f64,
}

impl PgCounters {
    fn read(stack: &Stack) -> anyhow::Result<Self> {
        // Backends publish their statistics within a second of a transaction.
        std::thread::sleep(Duration::from_millis(1500));
        let line = stack.sql(&format!(
            "SELECT d.xact_commit + d.xact_rollback, d.blks_read + d.blks_hit, w.wal_sync, p.xact_commit + p.xact_rollback
             FROM pg_stat_database d, pg_stat_wal w, pg_stat_database p
             WHERE d.datname = current_database() AND p.datname = '{}'",
            OriginDatabases::LEDGER
        ))?;
        let [transactions, buffers, wal_syncs, provider_transactions] = numbers(&line)?;
        Ok(Self { transactions, buffers, wal_syncs, provider_transactions })
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            transactions: self.transactions - before.transactions,
            buffers: self.buffers - before.buffers,
            wal_syncs: self.wal_syncs - before.wal_syncs,
            provider_transactions: self.provider_transactions - before.provider_transactions,
        }
    }
}

/// Backends of the bench database, sampled four times a second while a
/// load runs: how many are busy, how many of those wait idle in a
/// transaction for the origin's next statement.
struct Activity {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Vec<(f64, f64)>>,
}

struct Averages {
    idle_in_transaction: f64,
    busy: f64,
}

impl Activity {
    fn sample(stack: &Stack) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = stack.databases.sales.clone();
        let stopping = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let line = output(Command::new("psql").args([
                    &url,
                    "-tAc",
                    "SELECT count(*) FILTER (WHERE state = 'idle in transaction'),
                            count(*) FILTER (WHERE state IN ('active', 'idle in transaction'))
                     FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                ]));
                // A sample psql could not take (the machine is loaded) is skipped.
                if let Some([idle, busy]) = line.ok().and_then(|l| numbers(l.trim()).ok()) {
                    samples.push((idle, busy));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        Self { stop, sampler }
    }

    fn stop(self) -> Averages {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.sampler.join().unwrap_or_default();
        let n = samples.len().max(1) as f64;
        Averages {
            idle_in_transaction: samples.iter().map(|s| s.0).sum::<f64>() / n,
            busy: samples.iter().map(|s| s.1).sum::<f64>() / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt of `pg_waldump --stats=record` (PostgreSQL 15) after
    /// 8 s of orders on the local stack.
    const STATS: &str = "\
Type                                           N      (%)          Record size      (%)             FPI size      (%)        Combined size      (%)
----                                           -      ---          -----------      ---             --------      ---        -------------      ---
Transaction/COMMIT                         12916 (  5.61)               439144 (  1.70)                    0 (  0.00)               439144 (  1.66)
MultiXact/CREATE_ID                         3871 (  1.68)               244418 (  0.95)                    0 (  0.00)               244418 (  0.93)
Heap/INSERT                                27219 ( 11.83)              5660234 ( 21.91)                    0 (  0.00)              5660234 ( 21.44)
Heap/UPDATE                                15629 (  6.79)              4641125 ( 17.96)                    0 (  0.00)              4641125 ( 17.58)
Heap/HOT_UPDATE                              556 (  0.24)                43924 (  0.17)                    0 (  0.00)                43924 (  0.17)
Heap/LOCK                                  28794 ( 12.52)              1555111 (  6.02)               379572 ( 66.64)              1934683 (  7.33)
Heap/INSERT+INIT                             441 (  0.19)                98578 (  0.38)                    0 (  0.00)                98578 (  0.37)
Heap/UPDATE+INIT                             539 (  0.23)               598086 (  2.31)                    0 (  0.00)               598086 (  2.27)
Heap2/PRUNE                                 9323 (  4.05)               535362 (  2.07)                    0 (  0.00)               535362 (  2.03)
Btree/INSERT_LEAF                         117897 ( 51.25)              9409675 ( 36.42)               169848 ( 29.82)              9579523 ( 36.28)
Btree/INSERT_UPPER                           562 (  0.24)                53384 (  0.21)                    0 (  0.00)                53384 (  0.20)
Btree/INSERT_POST                           2645 (  1.15)               195594 (  0.76)                    0 (  0.00)               195594 (  0.76)
                                        --------                      --------                      --------                      --------
Total                                     230048                      25835640 [97.84%]               569592 [2.16%]              26405232 [100%]
";

    #[test]
    fn the_wal_records_are_counted_by_what_they_wrote() {
        assert_eq!(
            WalRecords::count(STATS),
            WalRecords {
                rows_inserted: 27219.0 + 441.0,
                rows_updated: 15629.0 + 539.0 + 556.0,
                hot_updates: 556.0,
                // Not INSERT_UPPER: a split's new downlink, not a row's entry.
                index_entries: 117897.0 + 2645.0,
                row_locks: 28794.0,
                multixacts: 3871.0,
                bytes: 26405232.0,
                full_page_bytes: 569592.0,
            }
        );
    }

    #[test]
    fn per_order_divides_each_count_by_the_orders() {
        let wal = WalRecords {
            rows_inserted: 100.0,
            rows_updated: 50.0,
            hot_updates: 10.0,
            index_entries: 420.0,
            row_locks: 104.0,
            multixacts: 14.0,
            bytes: 180_000.0,
            full_page_bytes: 82_000.0,
        };
        assert_eq!(
            wal.per_order(10.0),
            "10.0 rows inserted, 5.0 updated (1.0 of them HOT), 42.0 index entries, 10.4 row locks (1.4 shared: multixacts); 18.0 kB of WAL, 8.2 kB of it whole pages"
        );
    }

    #[test]
    fn a_psql_row_gives_exactly_the_figures_asked_for() {
        assert_eq!(numbers::<3>("13546|10977|7.7").unwrap(), [13546.0, 10977.0, 7.7]);
        assert!(numbers::<2>("13546|10977|7.7").is_err(), "a figure too many");
        assert!(numbers::<2>("13546|").is_err(), "an empty figure (NULL) is not zero");
    }
}
