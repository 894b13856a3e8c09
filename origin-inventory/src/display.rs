//! How pages and emails word places, one wording for both (prices: `wire::money`).

/// The wording of a place, shared by pages and emails.
pub fn place_name(section: &str, row: &str, number: i32, general_admission: bool) -> String {
    if general_admission {
        format!("{section}, standing place {number}")
    } else {
        format!("{section}, row {row}, seat {number}")
    }
}
