//! The saga timeline of the local stack: what each delivery tells about an order's saga
//! ([`Facts`]), the sagas seen lately ([`sagas`]), one order's invocations laid out in lanes
//! ([`saga`]), the time scale both views share ([`Scale`]) and the terminal rendering of
//! `local-stack trace` ([`render_text`]). The page and its JSON twin are in [`crate::page`].
//!
//! An order's saga is every delivery that touched the order id (HTTP path or response, an
//! event's `order_id`) or that carried one of the correlation ids those deliveries carried (the
//! orders API sets it from `x-correlation-id` or the request id; every event's envelope keeps it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::Delivery;

/// What a delivery's event and response say about sagas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub event_types: Vec<String>,
    pub order_ids: Vec<String>,
    pub order_state: Option<String>,
    /// The trace the records continue: an SQS message's `AWSTraceHeader`, an outbox
    /// record's `trace_header` (the first record's that has one).
    pub record_trace: Option<String>,
}

impl Facts {
    /// Reads an SQS or DynamoDB stream event (`Records`), or an HTTP API event (`rawPath`) and
    /// the function's `response`.
    pub fn of(event: &Value, response: Option<&Value>) -> Self {
        let mut facts = Self::default();
        if let Some(records) = event.get("Records").and_then(Value::as_array) {
            for envelope in records.iter().filter_map(envelope_of_record) {
                facts.add_envelope(&envelope);
            }
            facts.record_trace = records.iter().find_map(|r| {
                r.pointer("/attributes/AWSTraceHeader")
                    .or_else(|| r.pointer("/dynamodb/NewImage/trace_header/S"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        } else if let Some(path) = event.get("rawPath").and_then(Value::as_str) {
            facts.add_http(path, response);
        }
        facts
    }

    fn add_order(&mut self, id: &str) {
        if !id.is_empty() && !self.order_ids.iter().any(|o| o == id) {
            self.order_ids.push(id.to_owned());
        }
    }

    fn add_envelope(&mut self, envelope: &Value) {
        let Some(kind) = envelope.get("type").and_then(Value::as_str) else {
            return;
        };
        if !self.event_types.iter().any(|t| t == kind) {
            self.event_types.push(kind.to_owned());
        }
        if let Some(id) = envelope.pointer("/data/order_id").and_then(Value::as_str) {
            self.add_order(id);
        }
        let state = match kind {
            "OrderPlaced" => Some("PENDING"),
            "OrderConfirmed" => Some("CONFIRMED"),
            "OrderCancelled" => Some("CANCELLED"),
            _ => None,
        };
        if let Some(state) = state {
            self.order_state = Some(state.to_owned());
        }
    }

    fn add_http(&mut self, path: &str, response: Option<&Value>) {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let resource = segments.get(1).copied().unwrap_or_default();
        let is_order_path = resource == "orders";
        if matches!(resource, "orders" | "payments")
            && let Some(id) = segments.get(2)
        {
            self.add_order(id);
        }
        let body = response
            .and_then(|r| r.get("body"))
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str::<Value>(b).ok());
        let Some(body) = body else { return };
        if let Some(id) = body.get("order_id").and_then(Value::as_str) {
            self.add_order(id);
        }
        if is_order_path && let Some(id) = body.get("id").and_then(Value::as_str) {
            self.add_order(id);
            if let Some(status) = body.get("status").and_then(Value::as_str) {
                self.order_state = Some(status.to_owned());
            }
        }
    }
}

/// The event envelope of one SQS record (an EventBridge event's `detail`, or an envelope sent
/// as is) or one stream record (the `envelope` of an outbox item's new image).
fn envelope_of_record(record: &Value) -> Option<Value> {
    if let Some(body) = record.get("body").and_then(Value::as_str) {
        let body: Value = serde_json::from_str(body).ok()?;
        return match body.get("detail") {
            Some(detail) if body.get("detail-type").is_some() => Some(detail.clone()),
            _ => body.get("type").is_some().then_some(body),
        };
    }
    let text = record
        .pointer("/dynamodb/NewImage/envelope/S")
        .and_then(Value::as_str)?;
    serde_json::from_str(text).ok()
}

/// Which part of a service a function is: the lanes of a service are in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Http,
    Relay,
    Consumer,
    Timeout,
    Other,
}

impl Kind {
    /// From the function name's last part (`orders-http`, `-relay`, `-events`, `-timeout`),
    /// else from how it was called.
    fn of(function: &str, source: &str) -> Self {
        match (function.rsplit('-').next().unwrap_or_default(), source) {
            ("http", _) | (_, "http") => Kind::Http,
            ("relay", _) | (_, "dynamodb") => Kind::Relay,
            ("events", _) | (_, "sqs") => Kind::Consumer,
            ("timeout", _) | (_, "schedule") => Kind::Timeout,
            _ => Kind::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Http => "HTTP request",
            Kind::Relay => "relay",
            Kind::Consumer => "consumer",
            Kind::Timeout => "timeout",
            Kind::Other => "other",
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Ok,
    Failed,
    /// The function answered, reporting some records in `batchItemFailures`.
    BatchItemFailures,
}

impl Ending {
    pub fn label(self) -> &'static str {
        match self {
            Ending::Ok => "ok",
            Ending::Failed => "failed",
            Ending::BatchItemFailures => "batch item failures",
        }
    }

    fn of(d: &Delivery) -> Self {
        let http_5xx = d.source == "http"
            && d.outcome
                .split(" → ")
                .nth(1)
                .is_some_and(|s| s.starts_with('5'));
        if !d.failed_ids.is_empty() && (d.success || d.outcome.starts_with("partial failure")) {
            Ending::BatchItemFailures
        } else if d.success && d.failed_ids.is_empty() && !http_5xx {
            Ending::Ok
        } else {
            Ending::Failed
        }
    }
}

/// One invocation of a saga, as the page and `local-stack trace` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub function: String,
    pub service: String,
    pub kind: Kind,
    /// `http`, `sqs`, `dynamodb`, `schedule` or `invoke`.
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub event_types: Vec<String>,
    pub ending: Ending,
    /// The runner's one-line outcome, e.g. `POST /v1/orders → 201` or `ok`.
    pub detail: String,
    pub records: usize,
    pub failed_records: usize,
    pub order_ids: Vec<String>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
}

impl Hop {
    pub fn of(d: &Delivery) -> Self {
        let parts: Vec<&str> = d.function.rsplit('-').collect();
        let service = parts.get(1).copied().unwrap_or(&d.function).to_owned();
        Self {
            function: d.function.clone(),
            service,
            kind: Kind::of(&d.function, &d.source),
            source: d.source.clone(),
            started_at: d.started_at.unwrap_or_default(),
            duration_ms: d.duration.as_secs_f64() * 1000.0,
            event_types: d.event_types.clone(),
            ending: Ending::of(d),
            detail: d.outcome.clone(),
            records: d.ids.len(),
            failed_records: d.failed_ids.len(),
            order_ids: d.order_ids.clone(),
            correlation_id: d.correlation_id.clone(),
            trace_id: d.trace_id.clone(),
        }
    }

    pub fn ended_at(&self) -> DateTime<Utc> {
        self.started_at + chrono::Duration::microseconds((self.duration_ms * 1000.0) as i64)
    }
}

/// One lane of the timeline: one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub service: String,
    pub function: String,
    pub kind: Kind,
}

/// The lanes of `hops`: one per function, grouped by service (services in the order they first
/// appear), and within a service HTTP request, relay, consumer, timeout.
pub fn lanes(hops: &[Hop]) -> Vec<Lane> {
    let mut service_rank: HashMap<&str, usize> = HashMap::new();
    let mut sorted: Vec<&Hop> = hops.iter().collect();
    sorted.sort_by_key(|h| h.started_at);
    for h in &sorted {
        let next = service_rank.len();
        service_rank.entry(h.service.as_str()).or_insert(next);
    }
    let mut lanes: Vec<Lane> = Vec::new();
    for h in &sorted {
        if !lanes.iter().any(|l| l.function == h.function) {
            lanes.push(Lane {
                service: h.service.clone(),
                function: h.function.clone(),
                kind: h.kind,
            });
        }
    }
    lanes.sort_by(|a, b| {
        let rank = |l: &Lane| service_rank.get(l.service.as_str()).copied();
        (rank(a), a.kind, &a.function).cmp(&(rank(b), b.kind, &b.function))
    });
    lanes
}

/// One order's saga: its invocations in time order and their lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saga {
    pub order_id: String,
    pub correlation_ids: Vec<String>,
    pub state: Option<String>,
    pub lanes: Vec<Lane>,
    pub hops: Vec<Hop>,
}

/// The saga of `order_id` among `deliveries`; `None` when none touched it.
pub fn saga(deliveries: &[Delivery], order_id: &str) -> Option<Saga> {
    let touched = |d: &Delivery| d.order_ids.iter().any(|o| o == order_id);
    // The events' correlation id (the one of the request that placed the order); each read
    // of the order has its own, which only that request carries.
    let of = |with_events: bool| -> BTreeSet<String> {
        deliveries
            .iter()
            .filter(|d| touched(d) && (!with_events || !d.event_types.is_empty()))
            .filter_map(|d| d.correlation_id.clone())
            .collect()
    };
    let mut correlation_ids = of(true);
    if correlation_ids.is_empty() {
        correlation_ids = of(false);
    }
    let mut chosen: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| {
            touched(d)
                || d.correlation_id
                    .as_ref()
                    .is_some_and(|c| correlation_ids.contains(c))
        })
        .collect();
    if chosen.is_empty() {
        return None;
    }
    chosen.sort_by_key(|d| d.started_at);
    let hops: Vec<Hop> = chosen.iter().map(|d| Hop::of(d)).collect();
    let state = chosen
        .iter()
        .filter(|d| touched(d))
        .filter_map(|d| d.order_state.clone())
        .next_back();
    Some(Saga {
        order_id: order_id.to_owned(),
        correlation_ids: correlation_ids.into_iter().collect(),
        state,
        lanes: lanes(&hops),
        hops,
    })
}

/// One line of the list of recent sagas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaSummary {
    pub order_id: String,
    pub correlation_ids: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub state: Option<String>,
    pub invocations: usize,
}

/// The sagas among `deliveries`, the most recently active first, at most `limit`.
pub fn sagas(deliveries: &[Delivery], limit: usize) -> Vec<SagaSummary> {
    let mut sorted: Vec<&Delivery> = deliveries.iter().collect();
    sorted.sort_by_key(|d| d.started_at);
    let mut orders_of_correlation: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut by_order: BTreeMap<&str, SagaSummary> = BTreeMap::new();
    for d in &sorted {
        for o in &d.order_ids {
            if let Some(c) = &d.correlation_id {
                orders_of_correlation.entry(c).or_default().insert(o);
            }
        }
    }
    for d in &sorted {
        let hop = Hop::of(d);
        let mut orders: BTreeSet<&str> = d.order_ids.iter().map(String::as_str).collect();
        if let Some(more) = d
            .correlation_id
            .as_deref()
            .and_then(|c| orders_of_correlation.get(c))
        {
            orders.extend(more);
        }
        for o in orders {
            let s = by_order.entry(o).or_insert_with(|| SagaSummary {
                order_id: o.to_owned(),
                correlation_ids: Vec::new(),
                first_seen: hop.started_at,
                last_seen: hop.ended_at(),
                state: None,
                invocations: 0,
            });
            s.invocations += 1;
            s.first_seen = s.first_seen.min(hop.started_at);
            s.last_seen = s.last_seen.max(hop.ended_at());
            if d.order_ids.iter().any(|x| x == o) {
                if let Some(c) = &d.correlation_id
                    && !s.correlation_ids.contains(c)
                {
                    s.correlation_ids.push(c.clone());
                }
                if let Some(state) = &d.order_state {
                    s.state = Some(state.clone());
                }
            }
        }
    }
    let mut all: Vec<SagaSummary> = by_order.into_values().collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
    all.truncate(limit);
    all
}

/// How many messages a queue holds now (moto's `ApproximateNumberOf…` attributes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub logical_id: String,
    pub name: String,
    /// A dead-letter queue (some queue redrives to it, or its id ends in `Dlq`).
    pub dlq: bool,
    /// `ApproximateNumberOfMessages`; `None` when the queue could not be read.
    pub visible: Option<u64>,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: Option<u64>,
}

/// What `/_local/api/orders/<id>` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderView {
    pub saga: Saga,
    pub queues: Vec<QueueDepth>,
}

/// What `/_local/api/sagas` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagasView {
    pub sagas: Vec<SagaSummary>,
    pub queues: Vec<QueueDepth>,
}

/// Maps the time span of some hops onto `width` units (pixels or characters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub start: DateTime<Utc>,
    /// Milliseconds from the first start to the last end (at least 1).
    pub span_ms: f64,
    pub width: f64,
}

impl Scale {
    pub fn new(hops: &[Hop], width: f64) -> Self {
        let start = hops.iter().map(|h| h.started_at).min().unwrap_or_default();
        let end = hops.iter().map(Hop::ended_at).max().unwrap_or(start);
        let span_ms = ((end - start).num_microseconds().unwrap_or(0) as f64 / 1000.0).max(1.0);
        Self {
            start,
            span_ms,
            width,
        }
    }

    /// Milliseconds from the start to `t`.
    pub fn offset_ms(&self, t: DateTime<Utc>) -> f64 {
        (t - self.start).num_microseconds().unwrap_or(0) as f64 / 1000.0
    }

    /// Where `t` is, in `0..=width`.
    pub fn x(&self, t: DateTime<Utc>) -> f64 {
        (self.offset_ms(t) / self.span_ms * self.width).clamp(0.0, self.width)
    }

    /// How wide `ms` is (never wider than what is left after `x`).
    pub fn w(&self, ms: f64) -> f64 {
        (ms / self.span_ms * self.width).clamp(0.0, self.width)
    }
}

/// `local-stack trace`: the saga as text bars on a time axis `width` characters wide.
pub fn render_text(view: &OrderView, width: usize) -> String {
    const LABEL: usize = 30;
    /// Room right of the bars for `| 1234 ms batch item failures`.
    const TAIL: usize = 28;
    let saga = &view.saga;
    let bars = width.saturating_sub(LABEL + 4 + TAIL).max(10);
    let scale = Scale::new(&saga.hops, bars as f64);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "saga of order {} — {} — {} invocations over {:.0} ms",
        saga.order_id,
        saga.state.as_deref().unwrap_or("state unknown"),
        saga.hops.len(),
        scale.span_ms
    );
    if !saga.correlation_ids.is_empty() {
        let _ = writeln!(out, "correlation id {}", saga.correlation_ids.join(", "));
    }
    let end = format!("{:.0} ms", scale.span_ms);
    let _ = writeln!(
        out,
        "{:LABEL$}  0 ms{end:>pad$}",
        "",
        pad = bars.saturating_sub(2)
    );
    let mut service = "";
    for lane in &saga.lanes {
        if lane.service != service {
            service = &lane.service;
            let _ = writeln!(out, "{service}");
        }
        let name = format!("  {} ({})", short_name(&lane.function), lane.kind.label());
        let _ = writeln!(out, "{}", truncate(&name, width));
        for hop in saga.hops.iter().filter(|h| h.function == lane.function) {
            let from = scale.x(hop.started_at).floor() as usize;
            let len = (scale.w(hop.duration_ms).round() as usize).max(1);
            let from = from.min(bars - 1);
            let len = len.min(bars - from);
            let mark = match hop.ending {
                Ending::Ok => '█',
                Ending::Failed => '✗',
                Ending::BatchItemFailures => '▒',
            };
            let bar: String = std::iter::repeat_n(' ', from)
                .chain(std::iter::repeat_n(mark, len))
                .chain(std::iter::repeat_n(' ', bars - from - len))
                .collect();
            let at = format!("+{:.0} ms", scale.offset_ms(hop.started_at));
            let _ = writeln!(
                out,
                "{at:>LABEL$}  |{bar}| {:.0} ms {}",
                hop.duration_ms,
                hop.ending.label()
            );
            let mut detail = Vec::new();
            if !hop.event_types.is_empty() {
                detail.push(hop.event_types.join(", "));
            }
            if hop.kind == Kind::Http || hop.event_types.is_empty() {
                detail.push(hop.detail.clone());
            }
            if hop.failed_records > 0 {
                detail.push(format!(
                    "{} of {} records failed",
                    hop.failed_records, hop.records
                ));
            }
            if let Some(t) = &hop.trace_id {
                detail.push(format!("trace {}", trace_root(t)));
            }
            let line = format!("{:LABEL$}   {}", "", detail.join(" · "));
            let _ = writeln!(out, "{}", truncate(&line, width));
        }
    }
    if !view.queues.is_empty() {
        let _ = writeln!(out, "queues (visible / in flight)");
        for q in &view.queues {
            let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            let _ = writeln!(
                out,
                "  {:<28} {:>5} / {:<5}{}",
                q.logical_id,
                n(q.visible),
                n(q.in_flight),
                if q.dlq { " DLQ" } else { "" }
            );
        }
    }
    out.lines()
        .map(|l| truncate(l.trim_end(), width) + "\n")
        .collect()
}

/// The X-Ray trace id of a trace header: `1-5759e988-bd862e3fe1be46a994272793` of
/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=…;Sampled=0`.
pub fn trace_root(header: &str) -> &str {
    header
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .unwrap_or(header)
}

/// A function name without the stack's `<prefix><app>-<stage>-` part: `orders-http`.
pub fn short_name(function: &str) -> String {
    let parts: Vec<&str> = function.rsplitn(3, '-').collect();
    match parts.as_slice() {
        [kind, service, _] | [kind, service] => format!("{service}-{kind}"),
        _ => function.to_owned(),
    }
}

fn truncate(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_owned()
    } else {
        let mut s: String = line.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    const ORDER: &str = "01a22c70-7026-7366-8e10-7f9c6589dbf3";
    const CORR: &str = "c17ac92c-851f-4cbe-9733-23a703c80b9f";

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn envelope(kind: &str, order: &str) -> Value {
        json!({"id": "e1", "type": kind, "version": 1, "source": "shop.orders",
               "time": "2026-11-30T12:00:00Z", "correlation_id": CORR, "causation_id": null,
               "data": {"order_id": order}})
    }

    fn delivery(function: &str, source: &str, start: i64, ms: u64, facts: Facts) -> Delivery {
        Delivery {
            function: format!("smoke1-shop-dev-{function}"),
            source: source.into(),
            ids: if source == "http" {
                Vec::new()
            } else {
                vec!["m1".into()]
            },
            success: true,
            outcome: "ok".into(),
            correlation_id: Some(CORR.into()),
            duration: Duration::from_millis(ms),
            started_at: Some(at(start)),
            event_types: facts.event_types,
            order_ids: facts.order_ids,
            order_state: facts.order_state,
            trace_id: Some(format!("Root=1-{function};Parent=1;Sampled=0")),
            ..Delivery::default()
        }
    }

    fn sqs_event(kind: &str, order: &str) -> Value {
        let body = json!({"detail-type": kind, "source": "shop.orders",
                          "detail": envelope(kind, order)});
        json!({"Records": [{"messageId": "m1", "body": body.to_string()}]})
    }

    fn stream_event(kind: &str, order: &str) -> Value {
        json!({"Records": [{"dynamodb": {"SequenceNumber": "1", "NewImage": {
            "pk": {"S": "OUTBOX#e1"},
            "envelope": {"S": envelope(kind, order).to_string()}}}}]})
    }

    /// The happy saga of [`ORDER`] (and a GET of another order with its own correlation id).
    fn happy() -> Vec<Delivery> {
        let post = Facts::of(
            &json!({"rawPath": "/v1/orders", "requestContext": {}}),
            Some(&json!({"statusCode": 201,
                         "body": json!({"id": ORDER, "status": "PENDING"}).to_string()})),
        );
        let mut other = delivery(
            "orders-http",
            "http",
            5,
            3,
            Facts::of(&json!({"rawPath": "/v1/orders/other"}), None),
        );
        other.correlation_id = Some("another".into());
        vec![
            delivery("orders-http", "http", 0, 80, post),
            other,
            delivery(
                "orders-relay",
                "dynamodb",
                90,
                20,
                Facts::of(&stream_event("OrderPlaced", ORDER), None),
            ),
            delivery(
                "payments-events",
                "sqs",
                120,
                40,
                Facts::of(&sqs_event("OrderPlaced", ORDER), None),
            ),
            delivery(
                "payments-relay",
                "dynamodb",
                170,
                10,
                Facts::of(&stream_event("PaymentAuthorized", ORDER), None),
            ),
            delivery(
                "orders-events",
                "sqs",
                190,
                30,
                Facts::of(&sqs_event("PaymentAuthorized", ORDER), None),
            ),
            delivery(
                "orders-relay",
                "dynamodb",
                230,
                10,
                Facts::of(&stream_event("OrderConfirmed", ORDER), None),
            ),
            delivery(
                "notify-events",
                "sqs",
                250,
                50,
                Facts::of(&sqs_event("OrderConfirmed", ORDER), None),
            ),
        ]
    }

    #[test]
    fn facts_come_from_sqs_bodies_stream_images_and_http_paths() {
        let sqs = Facts::of(&sqs_event("PaymentAuthorized", ORDER), None);
        assert_eq!(sqs.event_types, vec!["PaymentAuthorized"]);
        assert_eq!(sqs.order_ids, vec![ORDER]);
        let stream = Facts::of(&stream_event("OrderConfirmed", ORDER), None);
        assert_eq!(stream.event_types, vec!["OrderConfirmed"]);
        assert_eq!(stream.order_state.as_deref(), Some("CONFIRMED"));
        let get = Facts::of(
            &json!({"rawPath": format!("/v1/payments/{ORDER}")}),
            Some(&json!({"body": "{\"status\": \"CAPTURED\"}"})),
        );
        assert_eq!(get.order_ids, vec![ORDER]);
        assert_eq!(
            get.order_state, None,
            "a payment's status is not the order's"
        );
        let list = Facts::of(&json!({"rawPath": "/v1/orders"}), None);
        assert!(list.order_ids.is_empty());
    }

    #[test]
    fn an_orders_saga_is_every_delivery_with_its_id_or_its_correlation_id() {
        let saga = saga(&happy(), ORDER).unwrap();
        assert_eq!(saga.hops.len(), 7, "{:#?}", saga.hops);
        assert!(saga.hops.iter().all(|h| !h.detail.contains("other")));
        assert_eq!(saga.correlation_ids, vec![CORR]);
        assert_eq!(saga.state.as_deref(), Some("CONFIRMED"));
        assert!(
            saga.hops
                .windows(2)
                .all(|w| w[0].started_at <= w[1].started_at)
        );
        assert_eq!(super::saga(&happy(), "unknown"), None);
    }

    #[test]
    fn a_delivery_with_only_the_correlation_id_joins_the_saga() {
        let mut deliveries = happy();
        let mut bare = delivery("notify-relay", "dynamodb", 310, 5, Facts::default());
        bare.event_types = vec!["NotificationSent".into()];
        deliveries.push(bare);
        let saga = saga(&deliveries, ORDER).unwrap();
        assert!(
            saga.hops
                .iter()
                .any(|h| h.function.ends_with("notify-relay"))
        );
    }

    #[test]
    fn lanes_are_one_per_function_grouped_by_service_in_kind_order() {
        let saga = saga(&happy(), ORDER).unwrap();
        let lanes: Vec<(String, Kind)> = saga
            .lanes
            .iter()
            .map(|l| (short_name(&l.function), l.kind))
            .collect();
        assert_eq!(
            lanes,
            vec![
                ("orders-http".into(), Kind::Http),
                ("orders-relay".into(), Kind::Relay),
                ("orders-events".into(), Kind::Consumer),
                ("payments-relay".into(), Kind::Relay),
                ("payments-events".into(), Kind::Consumer),
                ("notify-events".into(), Kind::Consumer),
            ]
        );
        assert_eq!(saga.lanes[0].service, "orders");
    }

    #[test]
    fn the_list_of_sagas_has_the_newest_first_with_counts_and_state() {
        let mut deliveries = happy();
        let mut newer = delivery(
            "orders-http",
            "http",
            1000,
            10,
            Facts::of(
                &json!({"rawPath": "/v1/orders"}),
                Some(&json!({"body": json!({"id": "o2", "status": "PENDING"}).to_string()})),
            ),
        );
        newer.correlation_id = Some("c2".into());
        deliveries.push(newer);
        let list = sagas(&deliveries, 10);
        let ids: Vec<&str> = list.iter().map(|s| s.order_id.as_str()).collect();
        assert_eq!(ids, vec!["o2", ORDER, "other"]);
        assert_eq!(list[1].invocations, 7);
        assert_eq!(list[1].state.as_deref(), Some("CONFIRMED"));
        assert_eq!(list[1].first_seen, at(0));
        assert_eq!(list[1].last_seen, at(300));
        assert_eq!(sagas(&deliveries, 1).len(), 1);
    }

    #[test]
    fn endings_tell_ok_failed_and_batch_item_failures_apart() {
        let mut d = delivery("payments-events", "sqs", 0, 1, Facts::default());
        assert_eq!(Ending::of(&d), Ending::Ok);
        d.failed_ids = vec!["m1".into()];
        assert_eq!(Ending::of(&d), Ending::BatchItemFailures);
        d.success = false;
        d.outcome = "crashed (signal 9), restarted".into();
        assert_eq!(Ending::of(&d), Ending::Failed);
        let mut http = delivery("orders-http", "http", 0, 1, Facts::default());
        http.outcome = "POST /v1/orders → 500 (error x)".into();
        assert_eq!(Ending::of(&http), Ending::Failed);
    }

    #[test]
    fn the_trace_id_is_the_root_of_the_trace_header() {
        assert_eq!(
            trace_root("Root=1-5759e988-bd86;Parent=53995c;Sampled=0"),
            "1-5759e988-bd86"
        );
        assert_eq!(trace_root("1-abc"), "1-abc");
    }

    #[test]
    fn the_scale_maps_the_sagas_span_onto_the_width() {
        let saga = saga(&happy(), ORDER).unwrap();
        let scale = Scale::new(&saga.hops, 600.0);
        assert_eq!(scale.span_ms, 300.0);
        assert_eq!(scale.x(at(0)), 0.0);
        assert_eq!(scale.x(at(150)), 300.0);
        assert_eq!(scale.x(at(900)), 600.0, "clamped to the width");
        assert_eq!(scale.w(30.0), 60.0);
        assert_eq!(Scale::new(&[], 100.0).span_ms, 1.0);
    }

    #[test]
    fn the_text_view_draws_one_bar_per_hop_in_its_lane() {
        let view = OrderView {
            saga: saga(&happy(), ORDER).unwrap(),
            queues: vec![QueueDepth {
                logical_id: "PaymentsQueueDlq".into(),
                name: "x".into(),
                dlq: true,
                visible: Some(2),
                in_flight: Some(0),
            }],
        };
        let text = render_text(&view, 122);
        assert!(text.lines().all(|l| l.chars().count() <= 122), "{text}");
        assert!(text.starts_with(&format!(
            "saga of order {ORDER} — CONFIRMED — 7 invocations"
        )));
        let bars: Vec<&str> = text.lines().filter(|l| l.contains('|')).collect();
        assert_eq!(bars.len(), 7, "{text}");
        // 60 bar cells for 300 ms: the first bar (0–80 ms) fills cells 0..16.
        let first = bars[0].split('|').nth(1).unwrap();
        assert_eq!(first.chars().count(), 60);
        assert_eq!(first.chars().take_while(|c| *c == '█').count(), 16);
        assert!(bars[0].ends_with("80 ms ok"));
        let notify = bars.iter().find(|l| l.contains("+250 ms")).unwrap();
        assert!(notify.split('|').nth(1).unwrap().ends_with(" ██████████"));
        for needle in [
            "orders\n",
            "  orders-http (HTTP request)",
            "  payments-events (consumer)",
            "OrderPlaced · trace 1-payments-events",
            "PaymentAuthorized · trace 1-orders-events",
            "PaymentsQueueDlq",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
