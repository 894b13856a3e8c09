//! How a price is written, by the edge's catalog pages and the origin's
//! pages and emails alike (and by the pages' scripts, through
//! `Intl.NumberFormat('en', {style: 'currency'})`, which writes the same):
//! a buyer sees one price one way from the event page to the ticket email.

/// `€1,234.50`, `$12.00`, `£0.99`; other currencies by code, `CHF 12.50`.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let mut units = (cents / 100).to_string();
    let mut at = units.len();
    while at > 3 {
        at -= 3;
        units.insert(at, ',');
    }
    let amount = format!("{units}.{:02}", cents % 100);
    match currency {
        "EUR" => format!("{sign}€{amount}"),
        "USD" => format!("{sign}${amount}"),
        "GBP" => format!("{sign}£{amount}"),
        code => format!("{sign}{code} {amount}"),
    }
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn prices_are_written_with_symbol_grouping_and_cents() {
        assert_eq!(money(123_450, "EUR"), "€1,234.50");
        assert_eq!(money(5_900, "EUR"), "€59.00");
        assert_eq!(money(99, "GBP"), "£0.99");
        assert_eq!(money(100_000_000, "USD"), "$1,000,000.00");
        assert_eq!(money(1_250, "CHF"), "CHF 12.50");
        assert_eq!(money(-1_250, "EUR"), "-€12.50", "a refund");
        assert_eq!(money(0, "EUR"), "€0.00");
    }
}
