//! One readable line per request and per event delivery, also kept in memory for tests.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

/// One request or event delivery to a function.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub function: String,
    /// `http`, `sqs`, `dynamodb` or `invoke`.
    pub source: String,
    /// SQS message ids or stream sequence numbers of the batch (empty for HTTP).
    pub ids: Vec<String>,
    /// Ids the function reported in `batchItemFailures`.
    pub failed_ids: Vec<String>,
    pub success: bool,
    pub outcome: String,
    pub correlation_id: Option<String>,
    pub duration: Duration,
}

/// Prints deliveries (when asked to) and remembers them.
#[derive(Debug, Default)]
pub struct Reporter {
    pub print: bool,
    log: Mutex<Vec<Delivery>>,
}

impl Reporter {
    pub fn new(print: bool) -> Self {
        Self {
            print,
            log: Mutex::default(),
        }
    }

    #[allow(clippy::print_stdout)]
    pub fn record(&self, d: Delivery) {
        if self.print {
            let corr = d
                .correlation_id
                .as_deref()
                .map(|c| format!(" corr={c}"))
                .unwrap_or_default();
            let ids = if d.ids.is_empty() {
                String::new()
            } else {
                format!(" records={}", d.ids.len())
            };
            let failed = if d.failed_ids.is_empty() {
                String::new()
            } else {
                format!(" failed={}", d.failed_ids.len())
            };
            println!(
                "{:<26} {:<8} {}{ids}{failed}{corr} {}ms",
                d.function,
                d.source,
                d.outcome,
                d.duration.as_millis()
            );
        }
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(d);
    }

    /// Everything recorded so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Finds a correlation id (`correlation_id` / `correlationId` / `x-correlation-id`) anywhere in
/// a JSON value, looking into strings that hold JSON too.
pub fn correlation_id(v: &Value) -> Option<String> {
    fn walk(v: &Value, depth: usize) -> Option<String> {
        if depth > 12 {
            return None;
        }
        match v {
            Value::Object(m) => {
                for k in ["correlation_id", "correlationId", "x-correlation-id"] {
                    if let Some(Value::String(s)) = m.get(k) {
                        return Some(s.clone());
                    }
                }
                m.values().find_map(|x| walk(x, depth + 1))
            }
            Value::Array(a) => a.iter().find_map(|x| walk(x, depth + 1)),
            Value::String(s) if s.starts_with('{') => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|x| walk(&x, depth + 1)),
            _ => None,
        }
    }
    walk(v, 0)
}
