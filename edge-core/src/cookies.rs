//! Request cookies, read the same way by the edge and the origin.

/// Every `name=value` pair of every `Cookie` header, in order.
pub fn cookies(headers: &http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
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
}
