//! `cargo xtask bench`: Stampede's numbers on this machine, each beside a
//! baseline measured in the same run, written as a Markdown report.
//!
//! - edge: a cached event page and a queue status poll through the edge
//!   host and through the Worker under workerd (`wrangler dev`), beside a
//!   native hyper server returning the same bytes, and on the edge host
//!   beside a trivial component (the host's own ceiling), with the host's
//!   CPU time per request;
//! - queue joins through the edge, beside raw `INCR` on the same Redis;
//! - origin: seat hold-and-release cycles, beside `pgbench` running the same
//!   conditional UPDATEs on a copy of the table without triggers (the
//!   physical ceiling) and on the table itself; whole orders (session, hold,
//!   pay) at 1, 16 and 64 buyers with Postgres's work per order, the same
//!   through the edge's waiting room at 16 and 64, and the outbox's
//!   delivery rate and lag behind them (`orders.rs`);
//! - peak memory of the edge host and the origin;
//! - a flash sale end to end (k6, every visitor from its own loopback
//!   address against the join limit as shipped), with the invariant check
//!   and what each visitor and each poll cost in Redis commands.
//!
//! Targets are reported, never asserted: these are benchmarks, not tests.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::build::binary_dir;
use wrangler_dev::Wrangler;

mod order_sql;
mod orders;

use crate::services::{
    EDGE_ISSUER, Edge, EdgeKeys, LOCAL_UPSTASH_TOKEN, Origin, OriginDatabases, OriginPeers, Postgres,
    Process, Redis, Smtp, UpstashGateway, free_port, seed_demo,
};
use crate::setup::output;

const CONNECTIONS: &str = "32";
/// The bench creates stadiums of 80,000 seats in one request each, which
/// took over the origin's default 10 s once on a slow host of this VM and
/// lost the whole run; no order comes near it (p99 under 0.3 s).
const ROOMY_REQUESTS: [(&str, &str); 1] = [("STAMPEDE_REQUEST_TIMEOUT_MS", "60000")];
/// The edge's per-address join limit, off: the bench's clients come from one address.
const NO_JOIN_LIMIT: [(&str, &str); 1] = [("SPIN_VARIABLE_QUEUE_JOINS_PER_MINUTE_PER_IP", "100000000")];
const SECONDS: &str = "10";

/// One line of the report.
struct Row {
    what: String,
    result: String,
    baseline: String,
    ratio: Option<f64>,
    target: String,
}

/// What `cargo xtask bench` measures: everything, or the origin alone
/// (`cargo xtask bench origin`, no edge runtimes and no flash sale).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Origin,
    /// The edge rows alone (`cargo xtask bench edge`): pages, polls and
    /// joins against their baselines and the host's ceiling.
    Edge,
}

impl Scope {
    pub fn parse(arg: Option<&str>) -> anyhow::Result<Self> {
        match arg {
            None => Ok(Scope::All),
            Some("origin") => Ok(Scope::Origin),
            Some("edge") => Ok(Scope::Edge),
            Some(other) => bail!("cargo xtask bench [origin|edge]: unknown scope {other}"),
        }
    }
}

/// The services every measurement runs against.
struct Stack {
    scratch: std::path::PathBuf,
    logs: std::path::PathBuf,
    postgres: Postgres,
    databases: OriginDatabases,
    redis: Redis,
    upstash: UpstashGateway,
    keys: EdgeKeys,
    demo: crate::services::Demo,
    origin: Origin,
    smtp: Smtp,
    webhook_receiver: Process,
}

impl Stack {
    fn start(root: &Path) -> anyhow::Result<Self> {
        let scratch = std::env::temp_dir().join(format!("stampede-bench-{}", std::process::id()));
        let logs = scratch.join("logs");
        std::fs::create_dir_all(&logs)?;
        // Durable like production: pgbench and the origin share the same fsync cost.
        let postgres = Postgres::start(&scratch.join("postgres"), free_port()?, true)?;
        let databases = OriginDatabases::create(&postgres)?;
        let redis = Redis::start(&scratch.join("redis"), free_port()?, false)?;
        let smtp = Smtp::start(root, &scratch.join("smtp"), free_port()?)?;
        let upstash = UpstashGateway::start(root, &redis, free_port()?, LOCAL_UPSTASH_TOKEN, &logs)?;
        let demo = seed_demo(root, &databases.sales)?;
        let keys = EdgeKeys::load_or_create(&scratch.join("edge-signing-keys"))?;
        let origin = Origin::start(
            root,
            &databases,
            &OriginPeers { smtp: &smtp, keys: &keys, upstash: &upstash, public_url: None },
            free_port()?,
            &ROOMY_REQUESTS,
            &logs,
        )?;
        let (webhook_receiver, webhook_port) =
            static_server(root, &scratch, "webhook-receiver", br#"{"received":true}"#, "application/json")?;
        let stack = Self {
            scratch,
            logs,
            postgres,
            databases,
            redis,
            upstash,
            keys,
            demo,
            origin,
            smtp,
            webhook_receiver,
        };
        // Each order's `order.created` is posted to the demo organizer's
        // endpoint as its confirmation is mailed: two deliveries per order
        // (with no endpoint the webhook's message is marked delivered unsent).
        let endpoint = format!(r#"{{"url":"http://127.0.0.1:{webhook_port}/stampede-webhooks"}}"#);
        stack.organizer("PUT", "/api/v1/organizer/webhook", &endpoint)?;
        Ok(stack)
    }

    /// One value from `psql`.
    fn sql(&self, query: &str) -> anyhow::Result<String> {
        output(Command::new("psql").args([&self.databases.sales, "-tAc", query])).map(|s| s.trim().to_owned())
    }

    /// An organizer API call with the demo organizer's key.
    fn organizer(&self, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
        curl(&[
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {}", self.demo.api_key),
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &format!("{}{path}", self.origin.url()),
        ])
    }
}

/// `static-server` (plain hyper) answering every request with `body`, its
/// files under `scratch` by `name`; the process and its port.
fn static_server(
    root: &Path,
    scratch: &Path,
    name: &'static str,
    body: &[u8],
    content_type: &str,
) -> anyhow::Result<(Process, u16)> {
    let file = scratch.join(format!("{name}-body"));
    std::fs::write(&file, body)?;
    let port = free_port()?;
    let mut server = Command::new(binary_dir(root).join("static-server"));
    server.arg(format!("127.0.0.1:{port}")).arg(&file).arg(content_type);
    let process = Process::spawn_listening(name, &mut server, scratch.join(format!("{name}.log")), port)?;
    Ok((process, port))
}

/// Whether every k6 run held its thresholds and the books balanced.
struct Verdict {
    passed: bool,
}

pub fn bench(root: &Path, scope: Scope) -> anyhow::Result<()> {
    let stack = Stack::start(root)?;
    let mut verdict = Verdict { passed: true };
    let mut rows = Vec::new();
    let mut peak_rss = Vec::new();
    if scope != Scope::Origin {
        rows.extend(edge_rows(root, &stack, &mut peak_rss)?);
    }
    if scope != Scope::Edge {
        let (holds, ceilings) = hold_rows(root, &stack, &mut verdict)?;
        rows.push(holds);
        rows.extend(orders::rows(root, &stack, &ceilings, &mut verdict)?);
    }
    let check_table = match scope {
        Scope::All => flash_sale_rows(root, &stack, &mut rows, &mut verdict)?,
        Scope::Origin => orders::check(root, &stack, &mut verdict)?,
        Scope::Edge => "no sale in this scope\n".to_owned(),
    };
    peak_rss.push(("origin", peak_rss_kib(stack.origin.process.pid())?));
    rows.push(Row {
        what: "peak RSS".into(),
        result: peak_rss
            .iter()
            .map(|(what, kib)| format!("{what} {} MiB", kib / 1024))
            .collect::<Vec<_>>()
            .join(", "),
        baseline: "—".into(),
        ratio: None,
        target: "—".into(),
    });

    let report = render(&rows, &check_table)?;
    let name = match scope {
        Scope::All => "latest.md",
        Scope::Origin => "latest-origin.md",
        Scope::Edge => "latest-edge.md",
    };
    let path = root.join("load-tests/reports").join(name);
    std::fs::create_dir_all(path.parent().expect("a folder"))?;
    std::fs::write(&path, &report)?;
    println!("{report}");
    println!("written to {}", path.display());
    let scratch = stack.scratch.clone();
    drop(stack);
    let _ = std::fs::remove_dir_all(&scratch);
    if !verdict.passed {
        anyhow::bail!("the benchmark missed a k6 threshold or the sales check: see the marked rows above");
    }
    Ok(())
}

/// The edge runtimes: pages and polls against native hyper and the host's
/// ceiling, joins against raw Redis.
fn edge_rows(
    root: &Path,
    stack: &Stack,
    peak_rss: &mut Vec<(&'static str, u64)>,
) -> anyhow::Result<Vec<Row>> {
    let Stack { scratch, logs, origin, upstash, keys, redis, demo, .. } = stack;
    let (scratch, logs) = (scratch.as_path(), logs.as_path());
    let edge = Edge::start(root, free_port()?, &origin.url(), upstash, keys, &NO_JOIN_LIMIT, logs)?;
    let event = &demo.on_sale_event;
    let workers = Wrangler::start(
        root,
        &wrangler_dev::Settings {
            vars: &[
                ("ORIGIN_URL", &origin.url()),
                ("UPSTASH_REDIS_REST_URL", &upstash.url()),
                ("UPSTASH_REDIS_REST_TOKEN", &upstash.token),
                ("QUEUE_SIGNING_KEYS", &keys.signing),
                ("QUEUE_ISSUER", EDGE_ISSUER),
                ("QUEUE_JOINS_PER_MINUTE_PER_IP", "100000000"),
            ],
            hyperdrive: None,
        },
    )
    .map_err(anyhow::Error::msg)?;
    // The same requests through both edge runtimes.
    let edges = [("edge host", edge.url()), ("workerd", workers.url(""))];

    let mut rows = Vec::new();
    // The edge host's answers' sizes, for the components of their shape.
    let (mut page_bytes, mut status_bytes) = (0, 0);
    for (runtime, base) in &edges {
        eprintln!("bench: {runtime}, cached event page");
        let page_url = format!("{base}/events/{event}");
        let page = http_get(&page_url)?;
        page_bytes = page_bytes.max(page.len());
        rows.push(against_baseline(
            root,
            scratch,
            &format!("{runtime}: cached event page (req/s)"),
            &page_url,
            &page,
            "text/html; charset=utf-8",
            &[],
            "≥ 50% of native",
        )?);
    }

    // One admission a minute and one active session: the third visitor waits.
    stack.organizer(
        "PUT",
        &format!("/api/v1/organizer/events/{event}/queue"),
        r#"{"enabled": true, "new_users_per_minute": 1, "total_active_users": 1, "session_duration_seconds": 600}"#,
    )?;
    // The origin publishes settings at once; instances re-read within 10 s.
    std::thread::sleep(Duration::from_secs(11));
    let join_url = format!("{}/api/v1/events/{event}/queue/join", edge.url());
    let mut token = String::new();
    for _ in 0..3 {
        let joined: Value = serde_json::from_str(&curl(&["-X", "POST", &join_url])?)?;
        token = joined["queue_token"].as_str().context("a join returns a queue token")?.to_owned();
    }
    let authorization = format!("Authorization: Bearer {token}");
    for (runtime, base) in &edges {
        eprintln!("bench: {runtime}, queue status poll of a waiting visitor");
        let status_url = format!("{base}/api/v1/events/{event}/queue/status");
        let status = curl(&["-H", &authorization, &status_url])?;
        status_bytes = status_bytes.max(status.len());
        if !status.contains("\"waiting\"") {
            bail!("the bench visitor is not waiting at the {runtime}: {status}");
        }
        rows.push(against_baseline(
            root,
            scratch,
            &format!("{runtime}: queue status poll (req/s)"),
            &status_url,
            status.as_bytes(),
            "application/json",
            &[&authorization],
            "no Redis write per poll",
        )?);
    }
    let status_url = format!("{}/api/v1/events/{event}/queue/status", edge.url());
    let before = RedisCommands::read(upstash, redis)?;
    let poll = http_load(&status_url, &[&authorization])?;
    let polled = RedisCommands::read(upstash, redis)?.since(&before);
    let polls_sent = poll.rps * SECONDS.parse::<f64>()?;
    rows.push(Row {
        what: "edge host: Redis commands per status poll".into(),
        result: format!("{:.4} reads, {:.4} writes", polled.reads / polls_sent, polled.writes / polls_sent),
        baseline: format!("{polls_sent:.0} polls of one waiting visitor"),
        ratio: None,
        target: "≤ 0.1 reads, no writes".into(),
    });

    eprintln!("bench: edge host, trivial component");
    let trivial = TrivialHost::start(root, scratch, logs, &[])?;
    let ceiling = against_baseline(
        root,
        scratch,
        "edge host: trivial component, the host's ceiling (req/s)",
        &trivial.url("/counter"),
        b"1",
        "text/plain",
        &[],
        "—",
    )?;
    rows.push(ceiling);
    // What reusing instances is worth: the same component with a fresh
    // instance per request, as `wasmtime serve` and Spin run it.
    let fresh = TrivialHost::start(root, scratch, logs, &["--max-reuse", "1"])?;
    eprintln!("bench: edge host, page and poll in turns with the host's ceiling");
    let page_url = format!("{}/events/{event}", edge.url());
    // What an answer of the page's or the poll's shape costs before our
    // components do anything: the same request read and as many bytes
    // written through their adapter, by a component that does nothing else.
    let shaped = |bytes: usize| trivial.url(&format!("/adapted?{bytes}"));
    let turns = in_turns(&[
        Turn { pid: trivial.process.pid(), url: trivial.url("/counter"), extra: vec![] },
        Turn { pid: edge.process.pid(), url: page_url, extra: vec![] },
        Turn { pid: edge.process.pid(), url: status_url, extra: vec![authorization.clone()] },
        Turn { pid: fresh.process.pid(), url: fresh.url("/counter"), extra: vec![] },
        Turn { pid: trivial.process.pid(), url: shaped(page_bytes), extra: vec![] },
        Turn { pid: trivial.process.pid(), url: shaped(status_bytes), extra: vec![authorization.clone()] },
    ])?;
    let [ceiling, page, poll, fresh_instances, page_shape, poll_shape] = turns.as_slice() else {
        unreachable!("six turns")
    };
    rows.push(against_ceiling("cached event page", page, ceiling));
    rows.push(shape_against_ceiling("the page's", page_bytes, page_shape, ceiling));
    rows.push(against_ceiling("queue status poll", poll, ceiling));
    rows.push(shape_against_ceiling("the poll's", status_bytes, poll_shape, ceiling));
    rows.push(Row {
        what: "edge host: trivial component, a fresh instance per request (req/s)".into(),
        result: format!("{:.0} ({:.0} µs host CPU per request)", fresh_instances.rps, fresh_instances.cpu_us),
        baseline: format!("{:.0} with warm instances reused, in turns", ceiling.rps),
        ratio: Some(fresh_instances.rps / ceiling.rps),
        target: "—".into(),
    });

    eprintln!("bench: queue joins");
    // Joins go to the demo event in its pre-queue, so the crowd of
    // benchmark visitors does not stand in front of the flash sale below.
    let prequeue_event = stack
        .sql("SELECT id FROM events WHERE prequeue_starts_at IS NOT NULL ORDER BY created_at LIMIT 1")?;
    let joins = http_load(&format!("{}/api/v1/events/{prequeue_event}/queue/join", edge.url()), &["--post"])?;
    let incr = redis_incr_rps(&redis.url())?;
    rows.push(Row {
        what: "queue joins through the edge (pre-queue, joins/s)".into(),
        result: format!("{:.0} (p99 {:.1} ms)", joins.rps, joins.p99_ms),
        baseline: format!("{incr:.0} raw `INCR`/s"),
        ratio: Some(joins.rps / incr),
        target: "—".into(),
    });

    peak_rss.push(("edge host", peak_rss_kib(edge.process.pid())?));
    Ok(rows)
}

/// What Postgres alone does on this machine, measured by pgbench on a copy
/// of `inventory` without triggers: the yardsticks of the order rows.
struct Ceilings {
    /// One seat's hold and release, as the origin runs them, per second.
    hold_cycles: f64,
    /// Issue 16's own baseline: transactions per second of one plain
    /// single-row compare-and-swap `UPDATE`, 16 clients.
    single_updates: f64,
}

/// Hold-and-release cycles at the origin beside pgbench.
/// Also returns the ceilings: pgbench on a copy of `inventory` without triggers.
fn hold_rows(root: &Path, stack: &Stack, verdict: &mut Verdict) -> anyhow::Result<(Row, Ceilings)> {
    eprintln!("bench: origin holds");
    let jazz = stack.sql(
        "SELECT id FROM events WHERE NOT queue_enabled AND status = 'on_sale' ORDER BY created_at LIMIT 1",
    )?;
    let sections = stack.sql(&format!(
        "SELECT string_agg(DISTINCT section_id::text, ',') FROM inventory WHERE event_id = '{jazz}'"
    ))?;
    let holds = k6_summary(
        root,
        &stack.scratch,
        "load-tests/bench/holds.js",
        &[],
        &[("ORIGIN_URL", &stack.origin.url()), ("EVENT_ID", &jazz), ("SECTIONS", &sections)],
    )?;
    let cycles = holds.summary["metrics"]["iterations"]["rate"].as_f64().unwrap_or(0.0);
    let hold_latency = &holds.summary["metrics"]["http_req_duration{kind:hold}"];
    let seats = number_seats(stack, &jazz)?;
    let with_trigger = pgbench(stack, &seats, &hold_cycle("inventory", &jazz), CONNECTIONS)?;
    // The physical ceiling: the same UPDATEs on a copy with no trigger.
    stack.sql(
        "CREATE TABLE bench_inventory (LIKE inventory INCLUDING ALL);
         INSERT INTO bench_inventory SELECT * FROM inventory; ANALYZE bench_inventory",
    )?;
    let ceiling = pgbench(stack, &seats, &hold_cycle("bench_inventory", &jazz), CONNECTIONS)?;
    let single_updates = pgbench(
        stack,
        &seats,
        &format!(
            "UPDATE bench_inventory i SET version = version + 1 FROM bench_seats b
         WHERE b.n = :n AND i.event_id = '{jazz}' AND i.seat_id = b.seat_id AND i.status = 'AVAILABLE';"
        ),
        "16",
    )?;
    let row = Row {
        what: "origin: seat hold + release cycles/s (32 buyers)".into(),
        result: holds.mark(format!(
            "{cycles:.0} (hold p50 {:.1} ms, p99 {:.1} ms)",
            hold_latency["med"].as_f64().unwrap_or(0.0),
            hold_latency["p(99)"].as_f64().unwrap_or(0.0)
        )),
        baseline: format!(
            "{ceiling:.0} pgbench tps, same UPDATEs on a table without triggers ({with_trigger:.0} on `inventory` itself, {:.0}%)",
            with_trigger / ceiling * 100.0
        ),
        ratio: Some(cycles / ceiling),
        target: "≥ 70% of pgbench".into(),
    };
    verdict.passed &= holds.passed;
    Ok((row, Ceilings { hold_cycles: ceiling, single_updates }))
}

/// The flash sale end to end through an edge with the join limit as
/// shipped; returns the invariant check's table.
fn flash_sale_rows(
    root: &Path,
    stack: &Stack,
    rows: &mut Vec<Row>,
    verdict: &mut Verdict,
) -> anyhow::Result<String> {
    let Stack { scratch, logs, origin, upstash, keys, redis, demo, .. } = stack;
    let event = &demo.on_sale_event;
    eprintln!("bench: flash sale");
    stack.organizer(
        "PUT",
        &format!("/api/v1/organizer/events/{event}/queue"),
        r#"{"enabled": true, "new_users_per_minute": 6000, "total_active_users": 2000, "session_duration_seconds": 600}"#,
    )?;
    // The join limit as shipped, and every visitor on its own address.
    let sale_edge = Edge::start(root, free_port()?, &origin.url(), upstash, keys, &[], logs)?;
    std::thread::sleep(Duration::from_secs(3));
    let redis_before = RedisCommands::read(upstash, redis)?;
    let sale = k6_summary(
        root,
        scratch,
        "load-tests/scenarios/flash-sale.js",
        &["--local-ips", "127.1.0.0/16"],
        &[
            ("BASE_URL", &sale_edge.url()),
            ("EVENT_ID", event),
            ("PEAK_RATE", "100"),
            ("RAMP", "5"),
            ("HOLD", "15"),
            ("MAX_WAIT", "30"),
        ],
    )?;
    let redis_after = RedisCommands::read(upstash, redis)?;
    let (balanced, check_table) = invariant_check(root, stack)?;
    let sold =
        stack.sql(&format!("SELECT count(*) FROM tickets WHERE event_id = '{event}' AND NOT voided"))?;
    let capacity = stack.sql(&format!("SELECT count(*) FROM inventory WHERE event_id = '{event}'"))?;
    let selling = stack.sql(&format!(
        "SELECT coalesce(round(extract(epoch FROM max(created_at) - min(created_at))::numeric, 1)::text, '—') FROM orders WHERE event_id = '{event}'"
    ))?;
    let visitors = sale.summary["metrics"]["iterations"]["count"].as_f64().unwrap_or(0.0);
    rows.push(Row {
        what: "flash sale (k6, 100 arrivals/s at peak)".into(),
        result: sale.mark(format!(
            "{visitors:.0} visitors, {sold} of {capacity} seats sold in {selling} s, oversold: {}",
            if balanced { "0" } else { "SEE CHECK" }
        )),
        baseline: "—".into(),
        ratio: None,
        target: "oversell 0".into(),
    });

    let joined = sale.summary["metrics"]["joins_refused"]["fails"].as_f64().unwrap_or(0.0);
    let polls = sale.summary["metrics"]["queue_polls"]["count"].as_f64().unwrap_or(0.0);
    let cost = redis_after.since(&redis_before);
    rows.push(Row {
        what: "flash sale: Redis commands per visitor".into(),
        result: format!(
            "{:.2} writes, {:.2} reads ({:.2} writes inside Redis, scripts' own commands counted)",
            cost.writes / joined.max(1.0),
            cost.reads / joined.max(1.0),
            cost.inner_writes / joined.max(1.0),
        ),
        baseline: format!("{joined:.0} visitors joined"),
        ratio: None,
        target: "≤ 3 writes".into(),
    });
    rows.push(Row {
        what: "flash sale: Redis reads per status poll".into(),
        result: if polls > 0.0 {
            format!("{:.3}", cost.poll_reads / polls)
        } else {
            "no visitor polled: every one was admitted on joining".into()
        },
        baseline: format!("{polls:.0} polls"),
        ratio: None,
        target: "≤ 0.1".into(),
    });

    verdict.passed &= sale.passed && balanced;
    Ok(check_table)
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `url` through the edge, then the same bytes from the native baseline.
#[allow(clippy::too_many_arguments)]
fn against_baseline(
    root: &Path,
    scratch: &Path,
    what: &str,
    url: &str,
    body: &[u8],
    content_type: &str,
    headers: &[&str],
    target: &str,
) -> anyhow::Result<Row> {
    let (_server, port) = static_server(root, scratch, "static-server", body, content_type)?;
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let _ = http_load(url, headers)?; // warm-up: instances, compiled code, caches
    let edge = http_load(url, headers)?;
    let native = http_load(&format!("http://127.0.0.1:{port}{path}"), headers)?;
    Ok(Row {
        what: what.into(),
        result: format!("{:.0} (p50 {:.2} ms, p99 {:.2} ms)", edge.rps, edge.p50_ms, edge.p99_ms),
        baseline: format!("{:.0} native hyper (p99 {:.2} ms)", native.rps, native.p99_ms),
        ratio: Some(edge.rps / native.rps),
        target: target.into(),
    })
}

/// A load through the edge host beside the host's ceiling (a trivial
/// component), with the host's CPU time per request.
fn against_ceiling(what: &str, load: &TurnResult, ceiling: &TurnResult) -> Row {
    Row {
        what: format!("edge host: {what} against the host's ceiling (req/s)"),
        result: format!("{:.0} ({:.0} µs host CPU per request)", load.rps, load.cpu_us),
        baseline: format!(
            "{:.0} trivial component ({:.0} µs), in turns, medians of {TURNS}",
            ceiling.rps, ceiling.cpu_us
        ),
        ratio: Some(load.rps / ceiling.rps),
        target: "≥ 70% of the ceiling".into(),
    }
}

/// A component answering in `what` shape and doing nothing else, beside
/// the host's ceiling: the most a component of that shape can reach.
fn shape_against_ceiling(what: &str, bytes: usize, load: &TurnResult, ceiling: &TurnResult) -> Row {
    Row {
        what: format!(
            "edge host: {what} shape alone, {bytes} bytes through the components' adapter and nothing else (req/s)"
        ),
        result: format!("{:.0} ({:.0} µs host CPU per request)", load.rps, load.cpu_us),
        baseline: format!("{:.0} trivial component ({:.0} µs), in turns", ceiling.rps, ceiling.cpu_us),
        ratio: Some(load.rps / ceiling.rps),
        target: "— (the most that shape allows)".into(),
    }
}

/// Rounds of loads taken in turns, and how long each load lasts.
const TURNS: usize = 3;
const TURN_SECONDS: &str = "5";

/// One load of a series taken in turns: `url` (with `extra` flags and
/// headers) served by process `pid`.
struct Turn {
    pid: u32,
    url: String,
    extra: Vec<String>,
}

/// Median rate and host CPU per request of one turn's loads.
struct TurnResult {
    rps: f64,
    cpu_us: f64,
}

/// Loads each of `turns` in turn, [`TURNS`] rounds: this VM's speed drifts
/// by tens of percent within minutes, and a ratio of two loads taken
/// minutes apart measures that drift as much as the code.
fn in_turns(turns: &[Turn]) -> anyhow::Result<Vec<TurnResult>> {
    let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); turns.len()];
    for _ in 0..TURNS {
        for (turn, samples) in turns.iter().zip(&mut samples) {
            let before = cpu_ticks(turn.pid)?;
            let extra: Vec<&str> = turn.extra.iter().map(String::as_str).collect();
            let load = http_load_for(&turn.url, &extra, TURN_SECONDS)?;
            let ticks = cpu_ticks(turn.pid)? - before;
            // Linux counts CPU time in ticks of 1/100 s.
            let requests = load.rps * TURN_SECONDS.parse::<f64>()?;
            samples.push((load.rps, ticks as f64 * 10_000.0 / requests.max(1.0)));
        }
    }
    Ok(samples
        .into_iter()
        .map(|s| TurnResult {
            rps: median(s.iter().map(|(rps, _)| *rps).collect()),
            cpu_us: median(s.iter().map(|(_, cpu)| *cpu).collect()),
        })
        .collect())
}

/// The middle value (the upper middle of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// User plus system CPU ticks of `pid` so far (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').context("a stat line")?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok()).context("utime and stime");
    Ok(field(11)? + field(12)?)
}

/// The edge host serving only the test component's `/counter`: what the
/// host itself costs per request, with nothing of ours inside.
struct TrivialHost {
    process: Process,
    port: u16,
}

impl TrivialHost {
    fn start(root: &Path, scratch: &Path, logs: &Path, flags: &[&str]) -> anyhow::Result<Self> {
        let manifest = scratch.join("trivial.toml");
        let wasm = crate::build::component_dir(root).join("edge_testbed.wasm");
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"trivial\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"trivial\"\n\
                 [component.trivial]\nsource = \"{}\"\n",
                wasm.display()
            ),
        )?;
        let port = free_port()?;
        let mut command = Command::new(binary_dir(root).join("edge-host"));
        command.arg("--manifest").arg(&manifest).args([
            "--wit",
            "wit",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        command.args(flags);
        let process = Process::spawn_listening(
            "edge-host (trivial)",
            &mut command,
            logs.join(format!("trivial-{port}.log")),
            port,
        )?;
        Ok(Self { process, port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Redis commands served so far: by the gateway (what Upstash bills; a
/// script is one command, counted as a write) and inside Redis (scripts'
/// own commands included).
struct RedisCommands {
    gateway: Value,
    inside: std::collections::HashMap<String, f64>,
}

/// What a stretch of traffic cost.
struct RedisCost {
    writes: f64,
    reads: f64,
    inner_writes: f64,
    /// `MGET`s: the reads status polls make.
    poll_reads: f64,
}

const READS: &[&str] = &["GET", "MGET", "ZSCORE", "ZCOUNT", "ZRANGEBYSCORE", "HGETALL", "ZRANGE"];

impl RedisCommands {
    fn read(upstash: &UpstashGateway, redis: &Redis) -> anyhow::Result<Self> {
        let gateway: Value = serde_json::from_str(&curl(&[&format!("{}/stats", upstash.url())])?)?;
        let port = redis.url().rsplit(':').next().context("a Redis URL with a port")?.to_owned();
        let info = output(Command::new("redis-cli").args(["-p", &port, "info", "commandstats"]))?;
        // cmdstat_zadd:calls=12,usec=...
        let inside = info
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?.parse().ok()?;
                Some((name.to_ascii_uppercase(), calls))
            })
            .collect();
        Ok(Self { gateway: gateway["commands"].clone(), inside })
    }

    fn since(&self, before: &Self) -> RedisCost {
        let mut cost = RedisCost { writes: 0.0, reads: 0.0, inner_writes: 0.0, poll_reads: 0.0 };
        for (name, count) in self.gateway.as_object().into_iter().flatten() {
            let delta = count.as_f64().unwrap_or(0.0) - before.gateway[name].as_f64().unwrap_or(0.0);
            if READS.contains(&name.as_str()) {
                cost.reads += delta;
            } else {
                cost.writes += delta;
            }
            if name == "MGET" {
                cost.poll_reads += delta;
            }
        }
        for (name, calls) in &self.inside {
            let delta = calls - before.inside.get(name).copied().unwrap_or(0.0);
            let script_or_read = READS.contains(&name.as_str())
                || ["EVAL", "EVALSHA", "INFO", "PING", "SCRIPT"].contains(&name.as_str());
            if !script_or_read {
                cost.inner_writes += delta;
            }
        }
        cost
    }
}

fn http_load(url: &str, extra: &[&str]) -> anyhow::Result<Load> {
    http_load_for(url, extra, SECONDS)
}

fn http_load_for(url: &str, extra: &[&str], seconds: &str) -> anyhow::Result<Load> {
    let mut command = Command::new(std::env::current_dir()?.join("target/release/http-load"));
    let (flags, headers): (Vec<&str>, Vec<&str>) = extra.iter().partition(|e| e.starts_with("--"));
    command.args(&flags).args([url, CONNECTIONS, seconds]).args(&headers);
    let result: Value = serde_json::from_str(&output(&mut command)?)?;
    if result["errors"].as_u64().unwrap_or(0) > 0 {
        eprintln!("bench: {} errors loading {url}", result["errors"]);
    }
    let number = |name: &str| result[name].as_f64().unwrap_or(0.0);
    Ok(Load { rps: number("rps"), p50_ms: number("p50_ms"), p99_ms: number("p99_ms") })
}

fn redis_incr_rps(redis_url: &str) -> anyhow::Result<f64> {
    let port = redis_url.rsplit(':').next().context("a Redis URL with a port")?;
    let out = output(Command::new("redis-benchmark").args([
        "-p",
        port,
        "-t",
        "incr",
        "-n",
        "200000",
        "-c",
        CONNECTIONS,
        "--csv",
    ]))?;
    // "test","rps",...  then  "INCR","67567.57",...
    out.lines()
        .find(|line| line.starts_with("\"INCR\""))
        .and_then(|line| line.split(',').nth(1))
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .with_context(|| format!("unexpected redis-benchmark output: {out}"))
}

/// The hold and the release UPDATEs the origin runs, each its own
/// transaction, on `table` (`inventory` or a copy).
fn hold_cycle(table: &str, event: &str) -> String {
    format!(
        "UPDATE {table} i SET status = 'HELD', hold_id = gen_random_uuid(), held_until = now() + interval '10 minutes', version = version + 1 FROM bench_seats b WHERE b.n = :n AND i.event_id = '{event}' AND i.seat_id = b.seat_id AND seat_is_free(i.status, i.held_until);
UPDATE {table} i SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = version + 1 FROM bench_seats b WHERE b.n = :n AND i.event_id = '{event}' AND i.seat_id = b.seat_id AND i.status = 'HELD';"
    )
}

/// Numbers the seats of `event` from 1 in `bench_seats` (`b.n` in the
/// pgbench scripts); returns how many there are.
fn number_seats(stack: &Stack, event: &str) -> anyhow::Result<String> {
    stack.sql(&format!(
        "DROP TABLE IF EXISTS bench_seats; CREATE TABLE bench_seats AS
         SELECT row_number() OVER (ORDER BY seat_id) AS n, seat_id FROM inventory WHERE event_id = '{event}';
         CREATE UNIQUE INDEX ON bench_seats (n); ANALYZE bench_seats;"
    ))?;
    stack.sql("SELECT count(*) FROM bench_seats")
}

/// Runs of `script` per second by `clients` pgbench clients, each run on a
/// random one of the `seats` numbered seats (`:n`), as fast as Postgres
/// takes them.
fn pgbench(stack: &Stack, seats: &str, script: &str, clients: &str) -> anyhow::Result<f64> {
    pgbench_script(stack, &format!("\\set n random(1, {seats})\n{script}\n"), &["-c", clients])
}

/// Runs of a whole pgbench `script` per second, with pgbench's `options`
/// besides a run of [`SECONDS`] on two threads.
fn pgbench_script(stack: &Stack, script: &str, options: &[&str]) -> anyhow::Result<f64> {
    let file = stack.scratch.join("pgbench.sql");
    std::fs::write(&file, script)?;
    let out = output(
        stack
            .postgres
            .pgbench()
            .args(["-n", "-j", "2", "-T", SECONDS])
            .args(options)
            .arg("-f")
            .arg(&file)
            .arg(&stack.databases.sales),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected pgbench output: {out}"))
}

/// The origin's invariant check (`origin-inventory check`) once every
/// payment cut off mid-way is settled: whether the books balance, and its
/// table.
fn invariant_check(root: &Path, stack: &Stack) -> anyhow::Result<(bool, String)> {
    // The origin's reconciler (every 15 s) settles pending payments.
    for _ in 0..90 {
        if stack.sql("SELECT count(*) FROM payments WHERE status = 'pending'")? == "0" {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let check = stack
        .databases
        .give_to(&mut Command::new(binary_dir(root).join("origin-inventory")))
        .arg("check")
        .env("RUST_LOG", "error")
        .output()?;
    Ok((check.status.success(), String::from_utf8_lossy(&check.stdout).into_owned()))
}

/// A k6 run's summary, and whether every threshold held.
struct K6Run {
    summary: Value,
    passed: bool,
}

impl K6Run {
    /// `result`, marked if the run missed a threshold.
    fn mark(&self, result: String) -> String {
        if self.passed { result } else { format!("{result} — K6 THRESHOLDS MISSED") }
    }
}

fn k6_summary(
    root: &Path,
    scratch: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<K6Run> {
    let summary = scratch.join("summary.json");
    let mut command = Command::new("k6");
    command.args(["run", "--quiet", "--no-usage-report", "--summary-export"]).arg(&summary).args(args);
    for (name, value) in env {
        command.args(["-e", &format!("{name}={value}")]);
    }
    let status = command.arg(root.join(script)).status()?;
    if !status.success() {
        eprintln!("bench: {script} missed a threshold ({status}); the report marks it and the bench fails");
    }
    Ok(K6Run { summary: serde_json::from_slice(&std::fs::read(&summary)?)?, passed: status.success() })
}

fn curl(args: &[&str]) -> anyhow::Result<String> {
    output(Command::new("curl").args(["-sS", "--fail-with-body"]).args(args))
}

/// The body of a GET, over HTTP/1.0 so it ends with the connection.
fn http_get(url: &str) -> anyhow::Result<Vec<u8>> {
    let rest = url.strip_prefix("http://").context("an http:// URL")?;
    let (authority, path) =
        rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut stream = TcpStream::connect(authority)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/html\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").context("an HTTP response")?;
    Ok(response[split + 4..].to_vec())
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM in /proc/<pid>/status")
}

fn render(rows: &[Row], check: &str) -> anyhow::Result<String> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']))
        .unwrap_or("unknown CPU");
    let memory = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = memory
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024 / 1024);
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?.trim().to_owned();
    let mut out = String::new();
    writeln!(out, "## Benchmark, {date}")?;
    writeln!(
        out,
        "\n{cpus} × {model}, {memory_gib} GiB; everything on loopback on this one machine; {CONNECTIONS} connections, {SECONDS} s per measurement.\n"
    )?;
    writeln!(out, "| measurement | result | baseline (same run) | ratio | target |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for row in rows {
        let ratio = row.ratio.map_or("—".to_owned(), |r| format!("{:.0}%", r * 100.0));
        writeln!(out, "| {} | {} | {} | {ratio} | {} |", row.what, row.result, row.baseline, row.target)?;
    }
    writeln!(out, "\nInvariant check at the end of the run:\n\n```\n{}```", check)?;
    Ok(out)
}
