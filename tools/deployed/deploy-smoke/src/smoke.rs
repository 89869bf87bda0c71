//! Smoke events and verdicts: which event a function gets, and what response passes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ports::Invocation;

/// How a function's response is judged, from the last `-` part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `*-http`: an API Gateway v2 response whose `statusCode` is below 500.
    Http,
    /// `*-events`, `*-relay`: a batch response with an empty `batchItemFailures`.
    Batch,
    /// `*-timeout` (scheduled jobs): any JSON result without a function error. The smoke
    /// invocation is a real run of the job, which must therefore be idempotent.
    Job,
}

impl Kind {
    /// The kind of `function` (a name or ARN), or `None` for a name with no smoke rule.
    pub fn of(function: &str) -> Option<Kind> {
        match function.rsplit('-').next() {
            Some("http") => Some(Kind::Http),
            Some("events" | "relay") => Some(Kind::Batch),
            Some("timeout") => Some(Kind::Job),
            _ => None,
        }
    }
}

/// The smoke events from `SMOKE_EVENTS`: a JSON object whose keys are name suffixes
/// (`http`, `orders-http`, …) and whose values are the events to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeEvents {
    /// Key → the event, already serialised.
    events: BTreeMap<String, Vec<u8>>,
}

impl SmokeEvents {
    /// Parses `SMOKE_EVENTS`; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let object: BTreeMap<String, Value> =
            serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
        if object.is_empty() {
            return Err("no smoke events".to_owned());
        }
        let mut events = BTreeMap::new();
        for (key, event) in object {
            if key.is_empty() || !event.is_object() {
                return Err(format!("the event for {key:?} is not a JSON object"));
            }
            events.insert(key, event.to_string().into_bytes());
        }
        Ok(SmokeEvents { events })
    }

    /// The event for `function`: that of the longest key the name ends with at a `-`
    /// boundary (`shop-dev-orders-http` takes `orders-http` before `http`).
    pub fn for_function(&self, function: &str) -> Option<&[u8]> {
        self.events
            .iter()
            .filter(|(key, _)| {
                function
                    .strip_suffix(key.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with('-'))
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(_, event)| event.as_slice())
    }

    /// The keys, for checks of the configuration.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }
}

/// Why a response fails the smoke test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the function failed ({kind}): {payload}")]
    FunctionError { kind: String, payload: String },
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    #[error("the response has no numeric statusCode")]
    NoStatusCode,
    #[error("the response status is {0}")]
    ServerError(u64),
    #[error("the response is not a batch response (no batchItemFailures array)")]
    NotABatchResponse,
    #[error("the empty batch reported {0} item failure(s)")]
    ItemFailures(usize),
}

/// The longest part of a payload quoted in a rejection.
const QUOTED_PAYLOAD: usize = 500;

/// Whether `invocation` passes the smoke test for `kind`.
pub fn judge(kind: Kind, invocation: &Invocation) -> Result<(), Rejection> {
    if let Some(error) = &invocation.function_error {
        return Err(Rejection::FunctionError {
            kind: error.clone(),
            payload: quoted(&invocation.payload),
        });
    }
    let response: Value = serde_json::from_slice(&invocation.payload)
        .map_err(|_| Rejection::NotJson(quoted(&invocation.payload)))?;
    match kind {
        Kind::Http => {
            let status = response
                .get("statusCode")
                .and_then(Value::as_u64)
                .ok_or(Rejection::NoStatusCode)?;
            if status >= 500 {
                return Err(Rejection::ServerError(status));
            }
        }
        Kind::Batch => {
            let failures = response
                .get("batchItemFailures")
                .and_then(Value::as_array)
                .ok_or(Rejection::NotABatchResponse)?;
            if !failures.is_empty() {
                return Err(Rejection::ItemFailures(failures.len()));
            }
        }
        Kind::Job => {}
    }
    Ok(())
}

/// The payload as text, cut to a loggable length.
fn quoted(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    match text.char_indices().nth(QUOTED_PAYLOAD) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned(payload: &str) -> Invocation {
        Invocation {
            function_error: None,
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_kind_comes_from_the_last_part_of_the_name() {
        assert_eq!(Kind::of("shop-dev-orders-http"), Some(Kind::Http));
        assert_eq!(Kind::of("shop-dev-payments-events"), Some(Kind::Batch));
        assert_eq!(
            Kind::of("arn:aws:lambda:eu-west-1:1:function:shop-dev-notify-relay"),
            Some(Kind::Batch)
        );
        assert_eq!(Kind::of("shop-dev-orders-timeout"), Some(Kind::Job));
        assert_eq!(Kind::of("shop-dev-orders-httpx"), None);
    }

    #[test]
    fn the_most_specific_suffix_wins() {
        let events =
            SmokeEvents::parse(r#"{"http":{"a":1},"orders-http":{"b":2},"relay":{"Records":[]}}"#)
                .unwrap();
        assert_eq!(
            events.for_function("shop-dev-orders-http"),
            Some(&br#"{"b":2}"#[..])
        );
        assert_eq!(
            events.for_function("shop-dev-payments-http"),
            Some(&br#"{"a":1}"#[..])
        );
        assert_eq!(
            events.for_function("shop-dev-notify-relay"),
            Some(&br#"{"Records":[]}"#[..])
        );
        assert_eq!(events.for_function("shop-dev-notify-events"), None);
        assert_eq!(
            events.for_function("shop-dev-xorders-http"),
            Some(&br#"{"a":1}"#[..])
        );
    }

    #[test]
    fn smoke_events_must_be_an_object_of_objects() {
        assert!(SmokeEvents::parse("[]").is_err());
        assert!(SmokeEvents::parse("{}").is_err());
        assert!(SmokeEvents::parse(r#"{"http":"GET /"}"#).is_err());
    }

    #[test]
    fn an_http_response_below_500_passes_and_a_5xx_fails() {
        assert_eq!(
            judge(Kind::Http, &returned(r#"{"statusCode":200,"body":"[]"}"#)),
            Ok(())
        );
        assert_eq!(
            judge(Kind::Http, &returned(r#"{"statusCode":401}"#)),
            Ok(())
        );
        assert_eq!(
            judge(Kind::Http, &returned(r#"{"statusCode":502}"#)),
            Err(Rejection::ServerError(502))
        );
        assert_eq!(
            judge(Kind::Http, &returned(r#"{"body":"hi"}"#)),
            Err(Rejection::NoStatusCode)
        );
    }

    #[test]
    fn a_batch_response_passes_only_with_no_item_failures() {
        assert_eq!(
            judge(Kind::Batch, &returned(r#"{"batchItemFailures":[]}"#)),
            Ok(())
        );
        assert_eq!(
            judge(
                Kind::Batch,
                &returned(r#"{"batchItemFailures":[{"itemIdentifier":"x"}]}"#)
            ),
            Err(Rejection::ItemFailures(1))
        );
        assert_eq!(
            judge(Kind::Batch, &returned("null")),
            Err(Rejection::NotABatchResponse)
        );
        assert!(matches!(
            judge(Kind::Batch, &returned("")),
            Err(Rejection::NotJson(_))
        ));
    }

    #[test]
    fn a_function_error_fails_whatever_the_payload() {
        let invocation = Invocation {
            function_error: Some("Unhandled".into()),
            payload: br#"{"batchItemFailures":[]}"#.to_vec(),
        };
        assert!(matches!(
            judge(Kind::Batch, &invocation),
            Err(Rejection::FunctionError { .. })
        ));
    }
}
