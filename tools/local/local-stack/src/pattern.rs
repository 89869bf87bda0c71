//! EventBridge-style event patterns, as used by event source mapping `FilterCriteria`.

use serde_json::Value;

/// Whether `event` matches `pattern` (exact values, `prefix`, `suffix`, `anything-but`,
/// `exists`, `equals-ignore-case`, `numeric`).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        let got = event.get(key);
        match want {
            Value::Object(_) => got.is_some_and(|g| matches(want, g)),
            Value::Array(options) => options.iter().any(|o| matches_one(o, got)),
            _ => false,
        }
    })
}

fn values(got: Option<&Value>) -> Vec<&Value> {
    match got {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    }
}

fn matches_one(option: &Value, got: Option<&Value>) -> bool {
    let Value::Object(rule) = option else {
        return values(got).contains(&option);
    };
    let Some((op, arg)) = rule.iter().next() else {
        return false;
    };
    let strs = || {
        values(got)
            .into_iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
    };
    match op.as_str() {
        "exists" => arg.as_bool() == Some(got.is_some()),
        "prefix" => arg
            .as_str()
            .is_some_and(|p| strs().iter().any(|s| s.starts_with(p))),
        "suffix" => arg
            .as_str()
            .is_some_and(|p| strs().iter().any(|s| s.ends_with(p))),
        "equals-ignore-case" => arg
            .as_str()
            .is_some_and(|p| strs().iter().any(|s| s.eq_ignore_ascii_case(p))),
        "anything-but" => {
            if got.is_none() {
                return false;
            }
            match arg {
                Value::Array(list) => values(got).iter().all(|v| !list.contains(v)),
                Value::Object(inner) => match inner.get("prefix").and_then(Value::as_str) {
                    Some(p) => strs().iter().all(|s| !s.starts_with(p)),
                    None => true,
                },
                other => values(got).iter().all(|v| *v != other),
            }
        }
        "numeric" => {
            let Some(conds) = arg.as_array() else {
                return false;
            };
            values(got).iter().filter_map(|v| v.as_f64()).any(|n| {
                conds.chunks(2).all(|c| {
                    match (
                        c.first().and_then(Value::as_str),
                        c.get(1).and_then(Value::as_f64),
                    ) {
                        (Some("="), Some(x)) => n == x,
                        (Some("<"), Some(x)) => n < x,
                        (Some("<="), Some(x)) => n <= x,
                        (Some(">"), Some(x)) => n > x,
                        (Some(">="), Some(x)) => n >= x,
                        _ => false,
                    }
                })
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_relay_filter_keeps_outbox_inserts_only() {
        let p = json!({"eventName":["INSERT"],"dynamodb":{"NewImage":{"pk":{"S":[{"prefix":"OUTBOX#"}]}}}});
        let rec = |name: &str, pk: &str| json!({"eventName": name, "dynamodb": {"NewImage": {"pk": {"S": pk}}}});
        assert!(matches(&p, &rec("INSERT", "OUTBOX#1")));
        assert!(!matches(&p, &rec("MODIFY", "OUTBOX#1")));
        assert!(!matches(&p, &rec("INSERT", "ORDER#1")));
        assert!(!matches(&p, &json!({"eventName": "INSERT"})));
    }

    #[test]
    fn anything_but_exists_and_numeric_work() {
        assert!(matches(
            &json!({"a": [{"anything-but": ["x"]}]}),
            &json!({"a": "y"})
        ));
        assert!(!matches(
            &json!({"a": [{"anything-but": ["x"]}]}),
            &json!({"a": "x"})
        ));
        assert!(matches(
            &json!({"b": [{"exists": false}]}),
            &json!({"a": 1})
        ));
        assert!(matches(
            &json!({"n": [{"numeric": [">", 1, "<=", 5]}]}),
            &json!({"n": 5})
        ));
    }
}
