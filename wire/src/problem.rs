//! The body of every refusal, at the edge and at the origin alike:
//! `{"error": "<stable code>", "message": "<for people>", ...details}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A stable code to branch on, e.g. `seat_unavailable`.
    #[cfg_attr(feature = "openapi", schema(example = "seat_unavailable"))]
    pub error: String,
    /// What happened, for people.
    pub message: String,
    /// Details some codes carry (e.g. `seat_ids` with `seat_unavailable`).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Map<String, Value>,
}

impl Problem {
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: error.into(), message: message.into(), details: Map::new() }
    }

    /// Adds a machine-readable field next to `error` and `message`.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.details.insert(key.to_owned(), value);
        self
    }

    /// The JSON text of the body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a problem serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_sit_beside_the_code_and_the_message() {
        let problem = Problem::new("seat_unavailable", "taken").with("seat_ids", ["s1"]);
        let json: Value = serde_json::from_str(&problem.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "seat_unavailable", "message": "taken", "seat_ids": ["s1"]})
        );
        assert_eq!(serde_json::from_value::<Problem>(json).unwrap(), problem);
    }
}
