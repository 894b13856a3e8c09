//! The sales invariants, checked straight in Postgres after a load test
//! (`origin-inventory check`): nothing sold twice, nothing sold above
//! capacity, money and orders agree, every ticket code verifies; and, with
//! `--maildir DIR`, that no email arrived twice.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use sqlx::{Acquire, Postgres};

use crate::tickets::verify_ticket_code;

/// One invariant and the rows that break it.
pub struct Finding {
    pub name: &'static str,
    pub violations: Vec<String>,
}

pub struct Report {
    pub findings: Vec<Finding>,
    pub orders: i64,
    pub tickets: i64,
    /// Payments still pending: charged or not, the reconciler settles them.
    pub in_flight: i64,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.findings.iter().map(|f| f.violations.len()).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} paid orders, {} live tickets, {} payments still settling",
            self.orders, self.tickets, self.in_flight
        )?;
        writeln!(f, "{:<44} {:>10}", "invariant", "violations")?;
        for finding in &self.findings {
            writeln!(f, "{:<44} {:>10}", finding.name, finding.violations.len())?;
            for example in finding.violations.iter().take(5) {
                writeln!(f, "    {example}")?;
            }
        }
        Ok(())
    }
}

/// Messages a mail server received more than once, by `Message-ID`, from
/// its maildir (`new/` and `cur/`): the outbox promises at most one
/// duplicate per crash, and none from stops and restarts.
pub fn duplicate_deliveries(maildir: &Path) -> std::io::Result<Finding> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for folder in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(folder)) else { continue };
        for entry in entries {
            let mail = std::fs::read(entry?.path())?;
            if let Some(id) = message_id(&String::from_utf8_lossy(&mail)) {
                *seen.entry(id).or_default() += 1;
            }
        }
    }
    let violations = seen.into_iter().filter(|(_, n)| *n > 1).map(|(id, n)| format!("{id} ×{n}")).collect();
    Ok(Finding { name: "an email delivered more than once", violations })
}

/// The `Message-ID` header of a raw message (headers end at the first blank line).
fn message_id(mail: &str) -> Option<String> {
    mail.lines().take_while(|line| !line.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id").then(|| value.trim().to_owned())
    })
}

/// Runs every check on `db`, and on `ledger`, the sandbox provider's
/// ledger (in `db` or a database of its own, see `payments::open_ledger`).
/// Each is a pool, or a connection or transaction (tests damage a sale
/// inside a transaction, check it, and roll back).
pub async fn check<'c, 'l>(
    db: impl Acquire<'c, Database = Postgres>,
    ledger: impl Acquire<'l, Database = Postgres>,
    ticket_secret: &[u8],
) -> sqlx::Result<Report> {
    let mut db = db.acquire().await?;
    let mut ledger = ledger.acquire().await?;
    let mut findings = Vec::new();
    // Each query names the rows that break one rule.
    macro_rules! check {
        ($name:literal, $sql:literal) => {
            let violations = sqlx::query_scalar!($sql).fetch_all(&mut *db).await?;
            findings.push(Finding { name: $name, violations: violations.into_iter().flatten().collect() });
        };
    }
    check!(
        "a seat in two live tickets",
        r#"SELECT event_id || ' seat ' || seat_id AS "violation?" FROM tickets WHERE NOT voided
         GROUP BY event_id, seat_id HAVING count(*) > 1"#
    );
    check!(
        "a seat in two live holds",
        r#"SELECT r.event_id || ' seat ' || rs.seat_id AS "violation?" FROM reservation_seats rs
         JOIN reservations r ON r.id = rs.reservation_id
         WHERE r.status = 'held' AND r.expires_at > now()
         GROUP BY r.event_id, rs.seat_id HAVING count(*) > 1"#
    );
    check!(
        "sold above capacity",
        r#"SELECT e.id || ': ' || t.sold || ' sold of ' || i.capacity AS "violation?" FROM events e
         CROSS JOIN LATERAL (SELECT count(*) AS sold FROM tickets WHERE event_id = e.id AND NOT voided) t
         CROSS JOIN LATERAL (SELECT count(*) AS capacity FROM inventory WHERE event_id = e.id) i
         WHERE t.sold > i.capacity"#
    );
    check!(
        "a ticket on a seat not booked",
        r#"SELECT t.id::text AS "violation?" FROM tickets t JOIN inventory i ON i.event_id = t.event_id AND i.seat_id = t.seat_id
         WHERE NOT t.voided AND i.status <> 'BOOKED'"#
    );
    check!(
        "an order whose tickets differ from its hold",
        r#"SELECT o.order_number AS "violation?" FROM orders o WHERE o.status = 'paid' AND
           (SELECT array_agg(seat_id ORDER BY seat_id) FROM tickets t WHERE t.order_id = o.id AND NOT t.voided)
           IS DISTINCT FROM
           (SELECT array_agg(seat_id ORDER BY seat_id) FROM reservation_seats rs WHERE rs.reservation_id = o.reservation_id)"#
    );
    check!(
        "an order without a successful charge",
        r#"SELECT o.order_number AS "violation?" FROM orders o JOIN payments p ON p.id = o.payment_id
         WHERE o.status = 'paid' AND p.status <> 'succeeded'"#
    );
    check!(
        "a successful payment without an order",
        r#"SELECT p.id::text AS "violation?" FROM payments p LEFT JOIN orders o ON o.payment_id = p.id
         WHERE p.status = 'succeeded' AND o.id IS NULL"#
    );
    // A charge whose payment is still pending is not yet a violation: the
    // reconciler turns it into an order or a refund (see `in_flight`). The
    // ledger may be another database, so the two sides meet here.
    let charged = sqlx::query!(
        "SELECT id, idempotency_key FROM sandbox_charges WHERE outcome = 'succeeded' AND NOT refunded"
    )
    .fetch_all(&mut *ledger)
    .await?;
    let answered: HashSet<String> = sqlx::query_scalar!(
        r#"SELECT p.id::text AS "id!" FROM payments p WHERE p.status = 'pending'
           OR EXISTS (SELECT 1 FROM orders o WHERE o.payment_id = p.id AND o.status = 'paid')"#
    )
    .fetch_all(&mut *db)
    .await?
    .into_iter()
    .collect();
    let unanswered =
        charged.into_iter().filter(|c| !answered.contains(&c.idempotency_key)).map(|c| c.id).collect();
    findings.push(Finding { name: "a card charged without an order or refund", violations: unanswered });
    let tickets = sqlx::query!("SELECT id, event_id, seat_id, code FROM tickets WHERE NOT voided")
        .fetch_all(&mut *db)
        .await?;
    let forged = tickets
        .iter()
        .filter(|t| verify_ticket_code(ticket_secret, &t.code, t.event_id, t.seat_id) != Some(t.id))
        .map(|t| t.id.to_string())
        .collect();
    findings.push(Finding { name: "a ticket code that does not verify", violations: forged });
    let orders = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM orders WHERE status = 'paid'"#)
        .fetch_one(&mut *db)
        .await?;
    let in_flight = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM payments WHERE status = 'pending'"#)
        .fetch_one(&mut *db)
        .await?;
    Ok(Report { findings, orders, tickets: tickets.len() as i64, in_flight })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_read_from_the_headers_only() {
        let mail = "From: a@b.c\r\nmessage-id: <7.ab@stampede.local>\r\n\r\nMessage-ID: <body@x>";
        assert_eq!(message_id(&mail.replace("\r\n", "\n")).as_deref(), Some("<7.ab@stampede.local>"));
        assert_eq!(message_id("Subject: x\n\nMessage-ID: <body@x>"), None);
    }

    #[test]
    fn mails_received_twice_are_reported() {
        let maildir = tempfile::tempdir().unwrap();
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir(maildir.path().join(folder)).unwrap();
        }
        let write = |folder: &str, name: &str, id: &str| {
            std::fs::write(maildir.path().join(folder).join(name), format!("Message-ID: {id}\n\nHello"))
                .unwrap();
        };
        write("new", "1", "<1@x>");
        write("cur", "2", "<1@x>");
        write("new", "3", "<2@x>");
        write("tmp", "4", "<2@x>"); // still being written: not delivered
        let finding = duplicate_deliveries(maildir.path()).unwrap();
        assert_eq!(finding.violations, ["<1@x> ×2"]);
    }
}
