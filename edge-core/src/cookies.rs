//! Cookies, read and written the same way by the edge and the origin, with
//! the `cookie` crate.

use cookie::time::Duration;
use cookie::{Cookie, SameSite};

/// Every `name=value` pair of every `Cookie` header, in order; pairs that
/// do not parse are skipped.
pub fn cookies(headers: &http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(|cookie| {
            let cookie = cookie.ok()?;
            Some((cookie.name_raw()?, cookie.value_raw()?))
        })
}

/// A `Set-Cookie` value for a credential: every path of the site, kept
/// from scripts (`HttpOnly`), sent on top-level navigations from elsewhere
/// but not on cross-site subrequests (`SameSite=Lax`), and `Secure` when
/// the site is served over HTTPS.
pub fn credential(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    Cookie::build((name, value))
        .path("/")
        .max_age(Duration::seconds(max_age_seconds))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
        .to_string()
}

/// A `Set-Cookie` value that makes the browser forget `name`.
pub fn removal(name: &str) -> String {
    credential(name, "", 0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_from_every_cookie_header() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; b=two".parse().unwrap());
        headers.append(http::header::COOKIE, "c=x=y; junk".parse().unwrap());
        let found: Vec<_> = cookies(&headers).collect();
        assert_eq!(found, [("a", "1"), ("b", "two"), ("c", "x=y")]);
    }

    #[test]
    fn credentials_are_http_only_lax_site_wide_and_secure_over_https() {
        let set = credential("stampede_queue_e", "t.o.k", 86_400, true);
        let parsed = Cookie::parse(set.as_str()).unwrap();
        assert_eq!((parsed.name(), parsed.value(), parsed.path()), ("stampede_queue_e", "t.o.k", Some("/")));
        assert_eq!(parsed.max_age(), Some(Duration::seconds(86_400)));
        assert_eq!(
            (parsed.http_only(), parsed.secure(), parsed.same_site()),
            (Some(true), Some(true), Some(SameSite::Lax))
        );
        assert_eq!(
            Cookie::parse(credential("a", "b", 60, false)).unwrap().secure(),
            None,
            "plain HTTP locally"
        );
        let gone = Cookie::parse(removal("stampede_access_e")).unwrap();
        assert_eq!((gone.value(), gone.max_age()), ("", Some(Duration::ZERO)));
    }
}
