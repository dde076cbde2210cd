//! An action's input, read as either protocol sends it.

use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};

/// An action's input in the JSON protocol's shape; the query protocol's
/// values are all strings, so numbers and booleans are read from either.
pub(super) struct Input(pub(super) Map<String, Value>);

impl Input {
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub(super) fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub(super) fn required(&self, name: &str) -> SqsResult<&str> {
        self.str(name)
            .ok_or_else(|| SqsError::missing_parameter(name))
    }

    pub(super) fn int(&self, name: &str) -> SqsResult<Option<i64>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
            Some(_) => Err(()),
        }
        .map_err(|()| SqsError::invalid_parameter(format!("{name} must be a whole number.")))
    }

    /// An integer parameter within `min..=max`.
    pub(super) fn int_in(&self, name: &str, min: i64, max: i64) -> SqsResult<Option<i64>> {
        match self.int(name)? {
            Some(n) if !(min..=max).contains(&n) => Err(SqsError::invalid_parameter(format!(
                "Value {n} for parameter {name} is invalid. Reason: must be between {min} and {max}."
            ))),
            n => Ok(n),
        }
    }

    pub(super) fn strings(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn map(&self, name: &str) -> Map<String, Value> {
        match self.0.get(name) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    /// The queue a request names by URL (or by bare name).
    pub(super) fn queue(&self) -> SqsResult<&str> {
        let url = self.required("QueueUrl")?;
        let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
        if name.is_empty() {
            return Err(SqsError::no_queue());
        }
        Ok(name)
    }

    /// Takes out the entries of a batch of `action`: 1 to 10, each with a
    /// distinct, valid Id.
    pub(super) fn entries(&mut self, action: &str) -> SqsResult<Vec<Input>> {
        let entry = format!("{action}RequestEntry");
        let items = match self.0.remove("Entries") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => return Err(SqsError::empty_batch(&entry)),
        };
        if items.len() > 10 {
            return Err(SqsError::too_many_entries(items.len()));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(map) = item else {
                return Err(SqsError::invalid_parameter(
                    "Batch entries must be objects.",
                ));
            };
            let entry = Input(map);
            let id = entry.required("Id")?;
            if !is_sqs_word(id) {
                return Err(SqsError::invalid_batch_id());
            }
            if !seen.insert(id.to_owned()) {
                return Err(SqsError::ids_not_distinct(id));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

/// SQS's rule for queue names (before `.fifo`) and batch entry ids: 1 to 80
/// of A-Z a-z 0-9 - _.
pub(super) fn is_sqs_word(s: &str) -> bool {
    (1..=80).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
