//! One spelling per path. The edge judges a request by its path, then hands
//! the path on to the origin; if the two could read different paths out of
//! one request (`%33…` for `3…`, `a/../b`, `//`), a request could pass the
//! gate as one thing and reach the origin as another. So every edge request
//! is normalised once, before routing, and only the normal form travels on.

use wire::encoding::DecodeError;

/// Why a path has no normal form: the request is refused with 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with `/`")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path is not UTF-8 once decoded")]
    NotUtf8,
    #[error("the path contains an encoded `/` or a control character")]
    ForbiddenCharacter,
    #[error("the path climbs above the root with `..`")]
    AboveRoot,
}

/// The normal form of `raw` (the path only, no query): segments
/// percent-decoded, `.` and empty segments dropped, `..` applied, then
/// re-encoded the one way [`encode_segment`] does. No trailing slash except
/// for the root. Idempotent: `normalize(normalize(p)) == normalize(p)`.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if is_normal(raw) {
        return Ok(raw.to_owned());
    }
    respell(raw)
}

/// Whether `raw` is already its own normal form, decided in one pass
/// without allocating: nearly every request's path is, so only the rest
/// pay for decoding and re-encoding. Conservative: a path with any escape
/// (even a normal `%20`) goes the long way.
fn is_normal(raw: &str) -> bool {
    if raw == "/" {
        return true;
    }
    let Some(rest) = raw.strip_prefix('/') else { return false };
    rest.split('/').all(|segment| {
        !segment.is_empty() && segment != "." && segment != ".." && segment.bytes().all(is_plain)
    })
}

/// Decodes, resolves and re-encodes `raw` (see [`normalize`]).
fn respell(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in raw.split('/') {
        let decoded = decode_segment(segment)?;
        match decoded.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            _ => segments.push(decoded),
        }
    }
    if segments.is_empty() {
        return Ok("/".into());
    }
    Ok(segments.iter().map(|s| format!("/{}", encode_segment(s))).collect())
}

fn decode_segment(segment: &str) -> Result<String, PathError> {
    let text = percent_decode(segment)?;
    if text.contains(['/', '\\']) || text.chars().any(char::is_control) {
        return Err(PathError::ForbiddenCharacter);
    }
    Ok(text)
}

/// Decodes every `%XX` strictly ([`wire::encoding::percent_decode`]).
pub fn percent_decode(text: &str) -> Result<String, PathError> {
    wire::encoding::percent_decode(text).map_err(|e| match e {
        DecodeError::BadEscape => PathError::BadEscape,
        DecodeError::NotUtf8 => PathError::NotUtf8,
    })
}

/// Puts `uri`'s path in normal form, keeping the query (and any scheme
/// and authority) as they are; a path already normal is not touched, so
/// the common case copies nothing.
pub fn normalize_uri(uri: &mut http::Uri) -> Result<(), PathError> {
    if is_normal(uri.path()) {
        return Ok(());
    }
    let path = respell(uri.path())?;
    if path == uri.path() {
        return Ok(());
    }
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = std::mem::take(uri).into_parts();
    // A normal path re-encodes everything a URI may not carry, and the
    // query came from a URI: the two together always parse.
    parts.path_and_query = Some(target.parse().expect("a normal path and a parsed query form a URI"));
    *uri = http::Uri::from_parts(parts).expect("only the path changed");
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters and the
/// sub-delimiters, `:` and `@` that a segment may carry as they are.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, ENCODED_IN_A_SEGMENT).to_string()
}

/// Every byte but [`is_plain`]'s.
const ENCODED_IN_A_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// RFC 3986's unreserved characters, the sub-delimiters, `:` and `@`.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_of_one_path_meet_in_one_form() {
        let id = "3b2f6c1e-5f2a-4c55-9d1e-2f1f3c1d9a01";
        let plain = format!("/api/v1/events/{id}/seatmap");
        for spelled in [
            format!("/api/v1/events/%33{}/seatmap", &id[1..]),
            format!("/api/v1/%65vents/{id}/seatmap/"),
            format!("//api/v1//events/./{id}/seatmap"),
            format!("/api/v1/reservations/../events/{id}/x/../seatmap"),
            format!("/api/v1/events/{id}/%2e/seatmap"),
            format!("/api/v1/events/x/%2E%2E/{id}/seatmap"),
        ] {
            assert_eq!(normalize(&spelled).as_deref(), Ok(plain.as_str()), "{spelled}");
        }
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/..").as_deref(), Ok("/"));
        assert_eq!(normalize("/orders/STM%20A").as_deref(), Ok("/orders/STM%20A"));
    }

    #[test]
    fn paths_without_a_normal_form_are_refused() {
        assert_eq!(normalize("relative"), Err(PathError::NotAbsolute));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%4"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%ff"), Err(PathError::NotUtf8));
        assert_eq!(normalize("/a%2Fb"), Err(PathError::ForbiddenCharacter));
        assert_eq!(normalize("/a%5Cb"), Err(PathError::ForbiddenCharacter));
        assert_eq!(normalize("/a%00"), Err(PathError::ForbiddenCharacter));
        assert_eq!(normalize("/.."), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/../../b"), Err(PathError::AboveRoot));
    }

    #[test]
    fn uris_keep_everything_but_the_path() {
        let normalized = |uri: &str| {
            let mut uri: http::Uri = uri.parse().unwrap();
            normalize_uri(&mut uri).map(|()| uri)
        };
        assert_eq!(
            normalized("http://edge.example:3000/a//%62/../c?q=%zz&x=1").unwrap(),
            "http://edge.example:3000/a/c?q=%zz&x=1"
        );
        assert_eq!(normalized("/api/v1/%72eservations").unwrap(), "/api/v1/reservations");
        assert_eq!(normalized("/a%2Fb"), Err(PathError::ForbiddenCharacter));
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Ok("a bé"));
        assert_eq!(percent_decode("%C3"), Err(PathError::NotUtf8));
        // `u8::from_str_radix` would take a sign: `%+1` is no escape.
        assert_eq!(percent_decode("a%+1"), Err(PathError::BadEscape));
        assert_eq!(percent_decode("%4"), Err(PathError::BadEscape));
    }

    proptest! {
        /// Whatever arrives, the normal form is a fixed point, has no dot or
        /// empty segments, and decodes back to the same segments.
        #[test]
        fn the_normal_form_is_stable(raw in "/[a-zA-Z0-9%./_~-]{0,40}") {
            if let Ok(normal) = normalize(&raw) {
                prop_assert_eq!(normalize(&normal), Ok(normal.clone()));
                prop_assert!(normal == "/" || !normal.ends_with('/'));
                for segment in normal.split('/').skip(1).filter(|_| normal != "/") {
                    prop_assert!(!segment.is_empty() && segment != "." && segment != "..", "{normal}");
                }
            }
        }

        /// The quick check never disagrees with the long way: a path it
        /// passes is what decoding and re-encoding make of it, and every
        /// normal form it is shown that has no escape passes.
        #[test]
        fn the_quick_check_agrees_with_the_long_way(raw in "/[a-zA-Z0-9%./_~@:;-]{0,40}") {
            if is_normal(&raw) {
                prop_assert_eq!(respell(&raw), Ok(raw.clone()));
            }
            if let Ok(normal) = respell(&raw) {
                prop_assert_eq!(is_normal(&normal), !normal.contains('%'), "{}", normal);
            }
        }

        /// A byte is left as it is by the encoder exactly when the quick
        /// check calls it plain: the two describe one normal form.
        #[test]
        fn the_encoder_and_the_quick_check_agree_on_every_byte(byte in 0u8..128) {
            let text = (byte as char).to_string();
            prop_assert_eq!(encode_segment(&text) == text, is_plain(byte));
        }

        /// Any text survives a round trip through one encoded segment.
        #[test]
        fn encoded_segments_decode_to_themselves(text in "[^/\\\\\\p{Cc}]{1,20}") {
            prop_assume!(text != "." && text != "..");
            let normal = normalize(&format!("/{}", encode_segment(&text))).unwrap();
            prop_assert_eq!(decode_segment(&normal[1..]).unwrap(), text);
        }
    }
}
