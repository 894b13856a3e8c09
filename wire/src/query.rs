//! The catalog list's query string (`GET /api/v1/events?…`), parsed and
//! bounded by one parser on both sides: the edge refuses bad input with a
//! 400 without touching the origin and gives equivalent URLs one cache
//! entry; the origin takes the same parameters with the same bounds.

use crate::encoding::{percent_decode, url_encode};
use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    #[error("`{0}` must be a date (YYYY-MM-DD) or an RFC 3339 time")]
    Date(&'static str),
    #[error("`{0}` must be a whole number between 1 and {1}")]
    Number(&'static str, u32),
    #[error("`{0}` must be at most {1} characters")]
    TooLong(&'static str, usize),
    #[error("`to` must not be before `from`")]
    Range,
    #[error("`{0}` must not contain control characters")]
    Control(&'static str),
    #[error("malformed percent-encoding")]
    Encoding,
}

/// A validated catalog list query.
#[derive(Debug, Default, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListQuery {
    /// Events starting at or after this time (`YYYY-MM-DD` or RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events starting at or before this time (a date means its end).
    pub to: Option<DateTime<Utc>>,
    /// At most 50 characters.
    pub category: Option<String>,
    /// At most 100 characters.
    pub city: Option<String>,
    /// Words in the title or description (at most 100 characters).
    pub q: Option<String>,
    /// From 1 (the default) to 10000.
    #[cfg_attr(feature = "openapi", param(required = false, minimum = 1, maximum = 10000))]
    pub page: u32,
    /// From 1 to 100 (default 20).
    #[cfg_attr(feature = "openapi", param(required = false, minimum = 1, maximum = 100))]
    pub limit: u32,
}

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

impl ListQuery {
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let mut query = Self { page: 1, limit: DEFAULT_LIMIT, ..Self::default() };
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value)?;
            let value = value.trim();
            if value.is_empty() {
                continue; // an empty form field means "no filter"
            }
            match key {
                "from" => query.from = Some(time(value, "from", false)?),
                "to" => query.to = Some(time(value, "to", true)?),
                "category" => query.category = Some(text(value, "category", 50)?),
                "city" => query.city = Some(text(value, "city", 100)?),
                "q" => query.q = Some(text(value, "q", 100)?),
                "page" => query.page = number(value, "page", 10_000)?,
                "limit" => query.limit = number(value, "limit", MAX_LIMIT)?,
                other => return Err(QueryError::Unknown(decode(other)?)),
            }
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && to < from
        {
            return Err(QueryError::Range);
        }
        Ok(query)
    }

    /// The canonical query string (fixed key order, defaults included),
    /// for the origin call and the cache key alike.
    pub fn canonical(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                parts.push(format!("{key}={}", url_encode(&value)));
            }
        };
        push("category", self.category.clone());
        push("city", self.city.clone());
        push("from", self.from.map(|t| t.to_rfc3339()));
        push("limit", Some(self.limit.to_string()));
        push("page", Some(self.page.to_string()));
        push("q", self.q.clone());
        push("to", self.to.map(|t| t.to_rfc3339()));
        parts.join("&")
    }

    /// The same query on another page.
    pub fn with_page(&self, page: u32) -> Self {
        Self { page, ..self.clone() }
    }
}

fn time(value: &str, name: &'static str, end_of_day: bool) -> Result<DateTime<Utc>, QueryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| QueryError::Date(name))?;
    let time = if end_of_day { date.and_hms_opt(23, 59, 59) } else { date.and_hms_opt(0, 0, 0) };
    Ok(time.expect("valid wall time").and_utc())
}

fn text(value: &str, name: &'static str, max: usize) -> Result<String, QueryError> {
    if value.chars().any(char::is_control) {
        return Err(QueryError::Control(name));
    }
    if value.chars().count() > max {
        return Err(QueryError::TooLong(name, max));
    }
    Ok(value.to_owned())
}

fn number(value: &str, name: &'static str, max: u32) -> Result<u32, QueryError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(QueryError::Number(name, max)),
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space),
/// strictly ([`percent_decode`]).
pub fn decode(value: &str) -> Result<String, QueryError> {
    percent_decode(&value.replace('+', " ")).map_err(|_| QueryError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_queries_normalise_to_one_string() {
        let a = ListQuery::parse("city=Berlin&category=music&page=1").unwrap();
        let b = ListQuery::parse("category=music&city=Berlin&limit=20&q=").unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), "category=music&city=Berlin&limit=20&page=1");
    }

    #[test]
    fn canonical_strings_escape_all_but_unreserved_characters() {
        let q = ListQuery::parse("q=rock+%26+roll%2Fjazz~_.-&city=K%C3%B6ln").unwrap();
        assert_eq!(q.canonical(), "city=K%C3%B6ln&limit=20&page=1&q=rock%20%26%20roll%2Fjazz~_.-");
        assert_eq!(
            ListQuery::parse(&q.canonical()).unwrap(),
            q,
            "the canonical string parses to the same query"
        );
    }

    #[test]
    fn dates_cover_whole_days_and_text_is_decoded() {
        let q = ListQuery::parse("from=2027-01-01&to=2027-01-31&q=rock+%26+roll").unwrap();
        assert_eq!(q.from.unwrap().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(q.to.unwrap().to_rfc3339(), "2027-01-31T23:59:59+00:00");
        assert_eq!(q.q.as_deref(), Some("rock & roll"));
    }

    #[test]
    fn form_text_is_decoded_strictly_with_plus_as_space() {
        assert_eq!(decode("a+b%20c%C3%A9").as_deref(), Ok("a b cé"));
        for bad in ["%zz", "%", "%4", "%ff", "%C3"] {
            assert_eq!(decode(bad), Err(QueryError::Encoding), "{bad}");
        }
    }

    #[test]
    fn paging_has_defaults_and_bounds() {
        let defaults = ListQuery::parse("").unwrap();
        assert_eq!((defaults.page, defaults.limit), (1, DEFAULT_LIMIT));
        let third = ListQuery::parse("page=3&limit=10").unwrap();
        assert_eq!((third.page, third.limit), (3, 10));
        assert!(ListQuery::parse("page=10000&limit=100").is_ok());
        for bad in ["page=0", "page=10001", "limit=0", "limit=101", "page=x", "limit=-1"] {
            assert!(ListQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(ListQuery::parse("page=0"), Err(QueryError::Number("page", 10_000)));
        assert_eq!(ListQuery::parse("limit=1000"), Err(QueryError::Number("limit", MAX_LIMIT)));
        assert_eq!(ListQuery::parse("page=-1"), Err(QueryError::Number("page", 10_000)));
        assert_eq!(ListQuery::parse("from=yesterday"), Err(QueryError::Date("from")));
        assert_eq!(ListQuery::parse("from=2027-02-01&to=2027-01-01"), Err(QueryError::Range));
        assert_eq!(ListQuery::parse("x=1"), Err(QueryError::Unknown("x".into())));
        assert_eq!(ListQuery::parse("q=%zz"), Err(QueryError::Encoding));
        assert_eq!(ListQuery::parse("q=%+1"), Err(QueryError::Encoding), "a signed escape is malformed");
        assert_eq!(ListQuery::parse("q=%C3"), Err(QueryError::Encoding), "not UTF-8");
        assert_eq!(ListQuery::parse("q=a%00"), Err(QueryError::Control("q")));
        assert_eq!(ListQuery::parse("city=a%0Ab"), Err(QueryError::Control("city")));
        assert_eq!(ListQuery::parse("category=A%00"), Err(QueryError::Control("category")));
        assert_eq!(ListQuery::parse(&format!("q={}", "a".repeat(101))), Err(QueryError::TooLong("q", 100)));
    }
}
