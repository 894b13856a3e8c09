//! How pages and emails word prices and places, one wording for both.

/// `EUR 12.50`: how pages and emails show prices.
pub fn money(cents: i64, currency: &str) -> String {
    format!("{currency} {}.{:02}", cents / 100, cents % 100)
}

/// The wording of a place, shared by pages and emails.
pub fn place_name(section: &str, row: &str, number: i32, general_admission: bool) -> String {
    if general_admission {
        format!("{section}, standing place {number}")
    } else {
        format!("{section}, row {row}, seat {number}")
    }
}
