//! The local runner's saga page, served next to the HTTP API (never part of it, and absent on
//! AWS): `/_local/` lists recent sagas, `/_local/?order=<id>` and `/_local/orders/<id>` draw one
//! order's timeline as inline SVG with the queue and DLQ depths; `/_local/api/sagas` and
//! `/_local/api/orders/<id>` are the JSON twins that `local-stack trace` reads
//! ([`fetch_order`]). Plain HTML generated here: no script, no front-end build.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::report::{KEPT, Reporter};
use crate::resources::Resources;
use crate::timeline::{
    Ending, Kind, OrderView, QueueDepth, Saga, SagasView, Scale, saga, sagas, short_name,
    trace_root,
};

/// How many sagas the list shows.
const LISTED: usize = 100;

/// A queue whose depth the page shows.
#[derive(Debug, Clone)]
struct Queue {
    logical_id: String,
    name: String,
    url: String,
    dlq: bool,
}

/// What the page reads: the runner's deliveries and moto's queues.
#[derive(Debug)]
pub struct Page {
    reporter: Arc<Reporter>,
    sqs: aws_sdk_sqs::Client,
    queues: Vec<Queue>,
}

impl Page {
    pub fn new(reporter: Arc<Reporter>, sqs: aws_sdk_sqs::Client, resources: &Resources) -> Self {
        let dlqs: Vec<&String> = resources
            .queues
            .values()
            .filter_map(|q| q.dead_letter_queue.as_ref())
            .collect();
        let queues = resources
            .queues
            .iter()
            .map(|(id, q)| Queue {
                logical_id: id.clone(),
                name: q.name.clone(),
                url: q.url.clone(),
                dlq: dlqs.contains(&id) || id.ends_with("Dlq"),
            })
            .collect();
        Self {
            reporter,
            sqs,
            queues,
        }
    }

    /// Every queue's `ApproximateNumberOfMessages` (and not visible), read now.
    async fn depths(&self) -> Vec<QueueDepth> {
        let reads = self.queues.iter().map(|q| async move {
            let attrs = self
                .sqs
                .get_queue_attributes()
                .queue_url(&q.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .ok();
            let get = |name: QueueAttributeName| {
                attrs
                    .as_ref()
                    .and_then(|a| a.attributes())
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
            };
            QueueDepth {
                logical_id: q.logical_id.clone(),
                name: q.name.clone(),
                dlq: q.dlq,
                visible: get(QueueAttributeName::ApproximateNumberOfMessages),
                in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            }
        });
        futures::future::join_all(reads).await
    }

    async fn sagas(&self) -> SagasView {
        SagasView {
            sagas: sagas(&self.reporter.deliveries(), LISTED),
            queues: self.depths().await,
        }
    }

    async fn order(&self, id: &str) -> Option<OrderView> {
        let saga = saga(&self.reporter.deliveries(), id)?;
        Some(OrderView {
            saga,
            queues: self.depths().await,
        })
    }
}

/// The `/_local/` routes; merged before the HTTP API's fallback, so they never reach a function.
pub fn router(page: Arc<Page>) -> axum::Router {
    axum::Router::new()
        .route("/_local", get(index))
        .route("/_local/", get(index))
        .route("/_local/orders/{id}", get(order_page))
        .route("/_local/api/sagas", get(api_sagas))
        .route("/_local/api/orders/{id}", get(api_order))
        .with_state(page)
}

/// The `order` parameter of a query string.
fn order_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "order")
        .map(|(_, v)| crate::http_api::percent_decode(&v.replace('+', " ")))
        .filter(|v| !v.is_empty())
}

async fn index(State(page): State<Arc<Page>>, uri: Uri) -> Response {
    match order_param(&uri) {
        Some(id) => order_page(State(page), Path(id)).await,
        None => Html(render_index(&page.sagas().await)).into_response(),
    }
}

async fn order_page(State(page): State<Arc<Page>>, Path(id): Path<String>) -> Response {
    match page.order(&id).await {
        Some(view) => Html(render_order(&view)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(layout(
                &format!("order {id}"),
                &format!(
                    "<p>No request or event touched order <code>{}</code> (the runner keeps the last {KEPT} deliveries). <a href=\"/_local/\">All sagas</a></p>",
                    esc(&id)
                ),
            )),
        )
            .into_response(),
    }
}

async fn api_sagas(State(page): State<Arc<Page>>) -> Response {
    axum::Json(page.sagas().await).into_response()
}

async fn api_order(State(page): State<Arc<Page>>, Path(id): Path<String>) -> Response {
    match page.order(&id).await {
        Some(view) => axum::Json(view).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/problem+json")],
            axum::Json(serde_json::json!({
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": format!("no request or event touched order {id} (the runner keeps the last {KEPT} deliveries)"),
            })),
        )
            .into_response(),
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The query-string form of an order id (ids are UUIDs; anything else is percent-encoded).
fn url_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right}code,.mono{font-family:ui-monospace,monospace;font-size:12px}td.mono,td.n{white-space:nowrap}\
.ok{color:#1a7f37}.failed{color:#c62828}.batch_item_failures{color:#b26a00}svg{border:1px solid #ddd;background:#fff}\
.note{color:#666}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{} · local stack</title><style>{STYLE}</style></head><body>{body}<p class=\"note\">Served by the local runner only (<code>local-stack up</code>); <code>/_local/</code> does not exist on AWS.</p></body></html>",
        esc(title)
    )
}

fn queue_table(queues: &[QueueDepth]) -> String {
    let mut t = String::from(
        "<h2>Queues</h2><table id=\"queues\"><tr><th>queue</th><th>name</th><th>DLQ</th><th>messages</th><th>in flight</th></tr>",
    );
    let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    for q in queues {
        let _ = write!(
            t,
            "<tr data-queue=\"{id}\"><td>{id}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&q.name),
            if q.dlq { "DLQ" } else { "" },
            n(q.visible),
            n(q.in_flight),
            id = esc(&q.logical_id),
        );
    }
    t.push_str("</table>");
    t
}

/// The list of recent sagas.
pub fn render_index(view: &SagasView) -> String {
    let mut body = String::from("<h1>Recent sagas</h1>");
    if view.sagas.is_empty() {
        body.push_str("<p>No order seen yet: place one (see <code>make token</code>).</p>");
    } else {
        body.push_str("<table id=\"sagas\"><tr><th>order</th><th>correlation id</th><th>first seen</th><th>last seen</th><th>state</th><th>invocations</th></tr>");
        for s in &view.sagas {
            let _ = write!(
                body,
                "<tr><td><a class=\"mono\" href=\"/_local/?order={}\">{}</a></td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                url_part(&s.order_id),
                esc(&s.order_id),
                esc(&s.correlation_ids.join(", ")),
                s.first_seen.format("%H:%M:%S%.3f"),
                s.last_seen.format("%H:%M:%S%.3f"),
                esc(s.state.as_deref().unwrap_or("")),
                s.invocations
            );
        }
        body.push_str("</table>");
    }
    body.push_str(&queue_table(&view.queues));
    layout("sagas", &body)
}

/// One order's timeline, its invocations and the queue depths.
pub fn render_order(view: &OrderView) -> String {
    let s = &view.saga;
    let mut body = format!(
        "<p><a href=\"/_local/\">All sagas</a> · <a href=\"/_local/api/orders/{}\">JSON</a></p><h1>Saga of order <span class=\"mono\">{}</span></h1><p>State: <b id=\"state\">{}</b> · correlation id <span class=\"mono\">{}</span> · {} invocations</p>",
        url_part(&s.order_id),
        esc(&s.order_id),
        esc(s.state.as_deref().unwrap_or("unknown")),
        esc(&s.correlation_ids.join(", ")),
        s.hops.len()
    );
    body.push_str(&render_svg(s));
    let scale = Scale::new(&s.hops, 1.0);
    body.push_str("<h2>Invocations</h2><table id=\"hops\"><tr><th>at</th><th>function</th><th>lane</th><th>event types</th><th>outcome</th><th>duration</th><th>records</th><th>trace id</th></tr>");
    for h in &s.hops {
        let _ = write!(
            body,
            "<tr data-function=\"{f}\"><td class=\"n\">+{:.0} ms</td><td class=\"mono\" title=\"{f}\">{}</td><td>{} {}</td><td>{}</td><td class=\"{}\">{} <span class=\"note\">{}</span></td><td class=\"n\">{:.0} ms</td><td class=\"n\">{}</td><td class=\"mono\" title=\"{}\">{}</td></tr>",
            scale.offset_ms(h.started_at),
            esc(&short_name(&h.function)),
            esc(&h.service),
            h.kind.label(),
            esc(&h.event_types.join(", ")),
            ending_class(h.ending),
            h.ending.label(),
            if h.detail == h.ending.label() {
                String::new()
            } else {
                esc(&h.detail)
            },
            h.duration_ms,
            match (h.records, h.failed_records) {
                (0, _) => String::new(),
                (n, 0) => n.to_string(),
                (n, f) => format!("{n} ({f} failed)"),
            },
            esc(h.trace_id.as_deref().unwrap_or("")),
            esc(h.trace_id.as_deref().map(trace_root).unwrap_or("")),
            f = esc(&h.function),
        );
    }
    body.push_str("</table>");
    body.push_str(&queue_table(&view.queues));
    layout(&format!("order {}", s.order_id), &body)
}

/// `POST /v1/orders → 201` as `POST → 201`: the path is in the tooltip and the table.
fn http_summary(detail: &str) -> String {
    match (detail.split_once(' '), detail.split_once(" → ")) {
        (Some((method, _)), Some((_, status))) => format!("{method} → {status}"),
        _ => detail.to_owned(),
    }
}

fn ending_class(e: Ending) -> &'static str {
    match e {
        Ending::Ok => "ok",
        Ending::Failed => "failed",
        Ending::BatchItemFailures => "batch_item_failures",
    }
}

fn ending_colour(e: Ending) -> &'static str {
    match e {
        Ending::Ok => "#2e7d32",
        Ending::Failed => "#c62828",
        Ending::BatchItemFailures => "#ef8f00",
    }
}

/// The timeline: one lane per function, grouped by service, each invocation a bar.
pub fn render_svg(saga: &Saga) -> String {
    const WIDTH: f64 = 1100.0;
    const LABEL: f64 = 220.0;
    const RIGHT: f64 = 20.0;
    const AXIS: f64 = 28.0;
    const GROUP: f64 = 22.0;
    const ROW: f64 = 30.0;
    let plot = WIDTH - LABEL - RIGHT;
    let scale = Scale::new(&saga.hops, plot);
    let mut rows = String::new();
    let mut y = AXIS;
    let mut service = "";
    for lane in &saga.lanes {
        if lane.service != service {
            service = &lane.service;
            let _ = write!(
                rows,
                "<text x=\"6\" y=\"{:.0}\" font-weight=\"bold\" font-size=\"13\">{}</text><line x1=\"0\" x2=\"{WIDTH}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#ddd\"/>",
                y + 16.0,
                esc(service),
                y + 1.0,
                y + 1.0
            );
            y += GROUP;
        }
        let _ = write!(
            rows,
            "<g class=\"lane\" data-function=\"{f}\"><text x=\"16\" y=\"{:.0}\" font-size=\"12\">{}</text><text x=\"16\" y=\"{:.0}\" font-size=\"10\" fill=\"#666\">{}</text>",
            y + 13.0,
            esc(&short_name(&lane.function)),
            y + 25.0,
            lane.kind.label(),
            f = esc(&lane.function),
        );
        let mut label_end = f64::MIN;
        let in_lane: Vec<_> = saga
            .hops
            .iter()
            .filter(|h| h.function == lane.function)
            .collect();
        for (i, h) in in_lane.iter().enumerate() {
            let x = LABEL + scale.x(h.started_at);
            let next_x = in_lane
                .get(i + 1)
                .map_or(f64::MAX, |n| LABEL + scale.x(n.started_at));
            let w = scale.w(h.duration_ms).max(3.0);
            let what = if h.event_types.is_empty() {
                h.detail.clone()
            } else {
                h.event_types.join(", ")
            };
            let what_short = if h.kind == Kind::Http {
                http_summary(&h.detail)
            } else {
                what.clone()
            };
            let label = format!(
                "{what_short} · {} · {:.0} ms",
                h.ending.label(),
                h.duration_ms
            );
            let tip = format!(
                "{} {}\n{}\n+{:.0} ms, {:.0} ms, {}\ntrace {}",
                short_name(&h.function),
                h.kind.label(),
                what,
                scale.offset_ms(h.started_at),
                h.duration_ms,
                h.detail,
                h.trace_id.as_deref().unwrap_or("-")
            );
            // About 6 px per character at 11 px; a label that would overlap the previous one
            // in its lane is left to the tooltip.
            let text_w = label.chars().count() as f64 * 6.0;
            let (tx, anchor, from, to) = if x + w + 8.0 + text_w > WIDTH {
                (x - 4.0, "end", x - 4.0 - text_w, x - 4.0)
            } else {
                (x + w + 4.0, "start", x, x + w + 4.0 + text_w)
            };
            let fits = from > label_end && (anchor == "end" || to < next_x);
            let label = if fits { label } else { String::new() };
            if !label.is_empty() {
                label_end = to;
            }
            let _ = write!(
                rows,
                "<g class=\"hop\" data-events=\"{}\" data-ending=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"18\" rx=\"3\" fill=\"{}\"/><text x=\"{tx:.1}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text></g>",
                esc(&h.event_types.join(" ")),
                ending_class(h.ending),
                esc(&tip),
                y + 5.0,
                ending_colour(h.ending),
                y + 18.0,
                esc(&label)
            );
        }
        rows.push_str("</g>");
        y += ROW;
    }
    let height = y + 8.0;
    let mut axis = String::new();
    for i in 0..=4 {
        let x = LABEL + plot * f64::from(i) / 4.0;
        let ms = scale.span_ms * f64::from(i) / 4.0;
        let anchor = if i == 4 { "end" } else { "middle" };
        let _ = write!(
            axis,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"20\" y2=\"{height:.0}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"14\" font-size=\"11\" fill=\"#666\" text-anchor=\"{anchor}\">{ms:.0} ms</text>"
        );
    }
    format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"system-ui,sans-serif\">{axis}{rows}</svg>"
    )
}

/// Reads `/_local/api/orders/<id>` from a running stack at `base` (`http://127.0.0.1:3000`).
pub async fn fetch_order(base: &str, order: &str) -> anyhow::Result<OrderView> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{base}: only http:// URLs"))?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(hostport)
        .await
        .with_context(|| format!("connecting to {base}: is `make run` running?"))?;
    let request = format!(
        "GET /_local/api/orders/{} HTTP/1.1\r\nhost: {hostport}\r\naccept: application/json\r\nconnection: close\r\n\r\n",
        url_part(order)
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("{base} answered no HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = raw.get(split + 4..).unwrap_or_default();
    let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    if status != "200" {
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(anyhow!("{base} answered {status}: {detail}"));
    }
    serde_json::from_slice(&body).context("reading the saga JSON")
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let Some(chunk) = rest.get(eol + 2..eol + 2 + n) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(chunk);
        rest = rest.get(eol + 4 + n..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_part("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn the_order_comes_from_the_query_string() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            order_param(&uri("/_local/?x=1&order=a%2Db")).as_deref(),
            Some("a-b")
        );
        assert_eq!(order_param(&uri("/_local/?order=")), None);
        assert_eq!(order_param(&uri("/_local/")), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
