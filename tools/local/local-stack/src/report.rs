//! One readable line per request and per event delivery, also kept in memory (the last
//! [`KEPT`]) for tests and for the saga page ([`crate::timeline`]).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::runtime::Invoked;

/// How many deliveries the reporter keeps (the oldest go first): enough for the saga timeline of
/// every order of a 2-minute `make load` at 5 orders/s (about 12 deliveries per order).
pub const KEPT: usize = 20_000;

/// One request or event delivery to a function.
#[derive(Debug, Clone, Default)]
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
    /// When the delivery started (filled by [`Reporter::record`] when the caller left it out).
    pub started_at: Option<DateTime<Utc>>,
    /// Event types it carried: EventBridge `detail-type`s of SQS bodies, envelope types of
    /// outbox stream records.
    pub event_types: Vec<String>,
    /// Orders it touched: the HTTP path and response, the events' `order_id`.
    pub order_ids: Vec<String>,
    /// The order state it revealed (an HTTP response's `status`, or the state an event implies).
    pub order_state: Option<String>,
    /// The `Lambda-Runtime-Trace-Id` the function ran with.
    pub trace_id: Option<String>,
}

impl Delivery {
    /// The saga facts of a delivery of `event` that ended as `invoked`; the caller fills the
    /// rest (`..Delivery::saga(&event, &invoked)`).
    pub fn saga(event: &Value, invoked: &Invoked) -> Self {
        let facts = crate::timeline::Facts::of(event, invoked.outcome.json().as_ref());
        Self {
            event_types: facts.event_types,
            order_ids: facts.order_ids,
            order_state: facts.order_state,
            // A batch is shown in the trace of the saga its records continue.
            trace_id: Some(
                facts
                    .record_trace
                    .unwrap_or_else(|| invoked.trace_header.clone()),
            ),
            ..Self::default()
        }
    }
}

/// Prints deliveries (when asked to) and remembers them.
#[derive(Debug, Default)]
pub struct Reporter {
    pub print: bool,
    log: Mutex<VecDeque<Delivery>>,
}

impl Reporter {
    pub fn new(print: bool) -> Self {
        Self {
            print,
            log: Mutex::default(),
        }
    }

    #[allow(clippy::print_stdout)]
    pub fn record(&self, mut d: Delivery) {
        if d.started_at.is_none() {
            let took = chrono::Duration::from_std(d.duration).unwrap_or_default();
            d.started_at = Some(Utc::now() - took);
        }
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
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= KEPT {
            log.pop_front();
        }
        log.push_back(d);
    }

    /// The last [`KEPT`] deliveries, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
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
