//! The one check every piece of client text passes before it reaches a
//! handler (JSON bodies, path parameters, query strings): no control
//! characters but tab and line breaks, and a length bound. Postgres refuses
//! U+0000 in `text`, mail headers must not carry raw line controls of other
//! kinds, and nothing a buyer or organizer types needs them.

use serde_json::Value;

/// No single string in a request is longer than this (field rules are
/// usually much tighter; this bounds what any handler ever sees).
pub const MAX_TEXT_CHARS: usize = 20_000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{at} contains a control character (U+{code:04X})")]
    ControlCharacter { at: String, code: u32 },
    #[error("{at} is longer than {MAX_TEXT_CHARS} characters")]
    TooLong { at: String },
}

impl TextError {
    pub fn at(&self) -> &str {
        match self {
            TextError::ControlCharacter { at, .. } | TextError::TooLong { at } => at,
        }
    }
}

/// Checks one string; `at` names it in the error.
pub fn check(at: &str, text: &str) -> Result<(), TextError> {
    if let Some(bad) = text.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(TextError::ControlCharacter { at: at.to_owned(), code: bad.into() });
    }
    if text.len() > MAX_TEXT_CHARS && text.chars().count() > MAX_TEXT_CHARS {
        return Err(TextError::TooLong { at: at.to_owned() });
    }
    Ok(())
}

/// Checks every string of a JSON document, keys included; errors name the
/// field as a JSON pointer (`/billing_details/name`).
pub fn check_json(value: &Value) -> Result<(), TextError> {
    fn walk(value: &Value, at: &mut String) -> Result<(), TextError> {
        match value {
            Value::String(text) => check(pointer(at), text),
            Value::Array(items) => {
                items.iter().enumerate().try_for_each(|(i, item)| nested(at, &i.to_string(), item))
            }
            Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
                check(pointer(at), key)?;
                nested(at, key, item)
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    fn nested(at: &mut String, key: &str, value: &Value) -> Result<(), TextError> {
        let len = at.len();
        at.push('/');
        at.push_str(key);
        let result = walk(value, at);
        at.truncate(len);
        result
    }
    fn pointer(at: &str) -> &str {
        if at.is_empty() { "the body" } else { at }
    }
    walk(value, &mut String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn controls_are_refused_but_tabs_and_line_breaks_pass() {
        assert!(check("name", "Ada Lovelace\tline\r\nnext").is_ok());
        for bad in ["a\0b", "\u{1b}[31m", "\u{7f}", "\u{85}"] {
            assert!(matches!(check("name", bad), Err(TextError::ControlCharacter { .. })), "{bad:?}");
        }
        assert_eq!(check("q", &"x".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(check("q", &"x".repeat(MAX_TEXT_CHARS + 1)), Err(TextError::TooLong { at: "q".into() }));
    }

    #[test]
    fn json_errors_point_at_the_field() {
        let body = json!({"billing_details": {"name": "A\u{0}", "email": "a@b.co"}});
        assert_eq!(check_json(&body).unwrap_err().at(), "/billing_details/name");
        let body = json!({"sections": [{"rows": [{"label": "ok"}, {"label": "\u{0}"}]}]});
        assert_eq!(check_json(&body).unwrap_err().at(), "/sections/0/rows/1/label");
        assert_eq!(check_json(&json!({"a\u{0}": 1})).unwrap_err().at(), "the body");
        assert!(check_json(&json!({"n": 1, "ok": [true, null, "fine"]})).is_ok());
    }

    proptest! {
        /// Whatever the text, the check agrees with the rule it states.
        #[test]
        fn the_check_is_exactly_the_rule(text in "\\PC{0,40}|[\\x00-\\x1f\\x7f-\\u{9f} a-z]{0,40}") {
            let has_control = text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
            prop_assert_eq!(check("t", &text).is_err(), has_control);
            prop_assert_eq!(check_json(&json!({"deep": [{"t": text.clone()}]})).is_err(), has_control);
        }
    }
}
