//! Percent-encoding as both sides read and write URLs: one strict decoder
//! (for paths and query strings alike) and one encoder of components.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Why a percent-encoded text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a `%` not followed by two hex digits")]
    BadEscape,
    #[error("the decoded bytes are not UTF-8")]
    NotUtf8,
}

/// Decodes every `%XX` strictly: a `%` without two hex digits, or bytes that
/// are not UTF-8 once decoded, are errors (lenient decoders, the
/// `percent-encoding` crate's among them, pass them on as they are, or read
/// a sign as in `%+1`, so two readers could see two different texts).
pub fn percent_decode(text: &str) -> Result<String, DecodeError> {
    let bytes = text.as_bytes();
    let well_formed = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return Err(DecodeError::BadEscape);
    }
    let decoded = percent_encoding::percent_decode(bytes).decode_utf8().map_err(|_| DecodeError::NotUtf8)?;
    Ok(decoded.into_owned())
}

/// What a component may hold unescaped: the URL's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a query-string value (or any URL component): all but
/// the unreserved characters.
pub fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(url_encode("rock & roll/ü"), "rock%20%26%20roll%2F%C3%BC");
        assert_eq!(url_encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn decoding_refuses_what_lenient_decoders_pass() {
        assert_eq!(percent_decode("a%20c%C3%A9").as_deref(), Ok("a cé"));
        for bad in ["%zz", "%", "%4", "%+1"] {
            assert_eq!(percent_decode(bad), Err(DecodeError::BadEscape), "{bad}");
        }
        for bad in ["%ff", "%C3"] {
            assert_eq!(percent_decode(bad), Err(DecodeError::NotUtf8), "{bad}");
        }
    }
}
