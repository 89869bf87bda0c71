//! Chaos runs of the whole application (`make chaos`, and a small run in `make test`): the
//! local stack with a share of the functions' AWS calls failing (`tools/testing/fault_proxy.py`) and
//! function processes SIGKILLed at random, while a burst of orders runs through the API like
//! clients would place them (retrying with the same `Idempotency-Key` when an answer is lost).
//!
//! Then [`Report`] reads what happened from the tables themselves (not through the faulty
//! path). Messages that failed `maxReceiveCount` times wait in their DLQ, as on AWS, where an
//! alarm calls the operator: the run does what the runbook says (`redrive move` of every
//! consumer DLQ, once) and waits again. Then it counts what must never happen: an order that never reaches a terminal state
//! within the saga timeout (lost), a duplicate order or notification, money held or captured
//! on a cancelled order, a confirmed order whose charge was never captured, a dead-letter
//! message that no terminal order accounts for.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kit::events::CancellationReason;
use kit::ids::{CustomerId, OrderId};
use local_stack::{Options, Stack};
use notify::ports::NotificationLog as _;
use orders::ports::OrderRepository as _;
use payments::domain::Operation;
use payments::ports::ChargeLedger as _;
use serde_json::{Value, json};

/// What a chaos run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Orders placed (one customer each).
    pub orders: usize,
    /// Share (0..1) of the functions' AWS calls that fail.
    pub faults: f64,
    /// SIGKILL a random function process this often.
    pub kill_every: Option<Duration>,
    /// Seed of the faults, the kills and the order mix.
    pub seed: u64,
    /// The template's `SagaTimeoutMinutes` for the run.
    pub saga_timeout_minutes: u32,
    /// How often the saga timeout's schedule fires.
    pub schedule_period: Duration,
    /// Orders placed at the same time.
    pub concurrency: usize,
    /// The moto endpoint to use (a new moto is started when `None`).
    pub aws_endpoint: Option<String>,
}

impl Plan {
    /// `orders` orders with `faults` of the AWS calls failing and a kill every 2 s.
    pub fn new(orders: usize, faults: f64, seed: u64) -> Self {
        Self {
            orders,
            faults,
            kill_every: Some(Duration::from_secs(2)),
            seed,
            saga_timeout_minutes: 1,
            schedule_period: Duration::from_secs(5),
            concurrency: 4,
            aws_endpoint: None,
        }
    }
}

/// How an order of the run is paid and whether its customer cancels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Approved: ends CONFIRMED (or CANCELLED by the saga timeout), captured.
    Approve,
    /// Declined: ends CANCELLED, nothing held.
    Decline,
    /// Approved, then cancelled by the customer right after placing: CANCELLED, voided or
    /// refunded.
    CustomerCancels,
    /// Authorization fails transiently once, then approved.
    Flaky,
    /// The capture fails transiently once.
    FlakyCapture,
    /// Cancelled by the customer; the void fails transiently once.
    FlakyVoid,
    /// The provider never answers: the message ends in the payments DLQ and the saga timeout
    /// cancels the order.
    Unavailable,
}

impl Kind {
    /// The mix: one unavailable provider in twelve orders, the rest spread over the others.
    fn of(i: usize) -> Self {
        match i % 12 {
            0 | 6 => Self::Approve,
            1 | 7 => Self::Decline,
            2 | 8 => Self::CustomerCancels,
            3 | 9 => Self::Flaky,
            4 => Self::FlakyCapture,
            5 | 10 => Self::FlakyVoid,
            _ => Self::Unavailable,
        }
    }

    fn card_token(self) -> &'static str {
        match self {
            Self::Approve | Self::CustomerCancels => "tok_approve",
            Self::Decline => "tok_decline_insufficient_funds",
            Self::Flaky => "tok_flaky_1",
            Self::FlakyCapture => "tok_flaky_capture_1",
            Self::FlakyVoid => "tok_flaky_void_1",
            Self::Unavailable => "tok_unavailable",
        }
    }

    fn customer_cancels(self) -> bool {
        matches!(self, Self::CustomerCancels | Self::FlakyVoid)
    }
}

/// One order the API accepted.
#[derive(Debug, Clone)]
struct Placed {
    id: String,
    customer: String,
    kind: Kind,
    /// The API acknowledged the customer's cancellation.
    cancel_acknowledged: bool,
}

/// What the checker found about one order at the end.
#[derive(Debug, Clone, Default)]
struct Seen {
    status: Option<orders::domain::Status>,
    timed_out: bool,
    /// Orders stored for the order's customer (1 unless a retry created a duplicate).
    orders_of_customer: usize,
    /// Notifications per event type (`OrderConfirmed`, `OrderCancelled`).
    notifications: BTreeMap<String, usize>,
    /// An authorization is in the ledger and neither voided nor refunded.
    held: bool,
    captured: bool,
    refunded: bool,
}

impl Seen {
    fn terminal(&self) -> bool {
        matches!(
            self.status,
            Some(orders::domain::Status::Confirmed | orders::domain::Status::Cancelled)
        )
    }

    fn about(&self) -> Option<&'static str> {
        match self.status {
            Some(orders::domain::Status::Confirmed) => Some("OrderConfirmed"),
            Some(orders::domain::Status::Cancelled) => Some("OrderCancelled"),
            _ => None,
        }
    }

    /// Money is held or kept for a cancelled order.
    fn held_wrongly(&self) -> bool {
        self.status == Some(orders::domain::Status::Cancelled)
            && (self.held || (self.captured && !self.refunded))
    }

    /// Everything the saga owes this order has happened.
    fn settled(&self) -> bool {
        let paid = match self.status {
            Some(orders::domain::Status::Confirmed) => self.captured,
            Some(orders::domain::Status::Cancelled) => !self.held_wrongly(),
            _ => false,
        };
        paid && self
            .about()
            .is_some_and(|a| self.notifications.get(a).copied().unwrap_or(0) >= 1)
    }
}

/// The result of a run: the counts the table prints, and the ids behind each problem.
#[derive(Debug, Default)]
pub struct Report {
    pub orders: usize,
    /// Orders the client gave up placing (every attempt failed); not part of the saga.
    pub rejected: usize,
    pub faults_injected: usize,
    pub processes_killed: usize,
    pub confirmed: usize,
    pub cancelled: usize,
    /// Cancelled by the saga timeout (`payment_timeout`).
    pub timed_out: usize,
    /// Not terminal (or not settled) within the saga timeout.
    pub lost: Vec<String>,
    /// Orders stored twice, or notified more than once about the same state.
    pub duplicated: Vec<String>,
    /// Cancelled orders with money held or captured and not refunded.
    pub held_wrongly: Vec<String>,
    /// Confirmed orders whose charge was not captured.
    pub not_captured: Vec<String>,
    /// Orders in a state their payment forbids (a declined order confirmed, a customer's
    /// cancellation not applied).
    pub wrong_state: Vec<String>,
    /// Terminal orders with no notification about their state.
    pub not_notified: Vec<String>,
    /// Messages moved back from the consumer DLQs to their queues (the operator's redrive).
    pub redriven: usize,
    /// Messages in dead-letter queues at the end.
    pub dlq_messages: usize,
    /// Dead-letter messages no terminal order of the run accounts for (queue: body start).
    pub dlq_unaccounted: Vec<String>,
    pub duration: Duration,
}

impl Report {
    /// Every broken guarantee, one line each (empty when the run is clean).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |what: &str, ids: &[String]| {
            if !ids.is_empty() {
                out.push(format!("{what}: {} ({})", ids.len(), ids.join(", ")));
            }
        };
        add("lost (not settled within the saga timeout)", &self.lost);
        add("duplicated", &self.duplicated);
        add("money held on a cancelled order", &self.held_wrongly);
        add("confirmed but not captured", &self.not_captured);
        add("wrong state", &self.wrong_state);
        add("not notified", &self.not_notified);
        add("unaccounted dead-letter messages", &self.dlq_unaccounted);
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, usize); 18] = [
            ("orders", self.orders),
            ("rejected by the API (client gave up)", self.rejected),
            ("faults injected", self.faults_injected),
            ("processes killed", self.processes_killed),
            ("confirmed", self.confirmed),
            ("cancelled", self.cancelled),
            ("  of which by the saga timeout", self.timed_out),
            ("redriven from consumer DLQs", self.redriven),
            ("dead-letter messages at the end", self.dlq_messages),
            ("lost", self.lost.len()),
            ("duplicated", self.duplicated.len()),
            ("held wrongly", self.held_wrongly.len()),
            ("confirmed, not captured", self.not_captured.len()),
            ("wrong state", self.wrong_state.len()),
            ("not notified", self.not_notified.len()),
            (
                "dead-letter messages unaccounted",
                self.dlq_unaccounted.len(),
            ),
            (
                "duration (s)",
                usize::try_from(self.duration.as_secs()).unwrap_or(usize::MAX),
            ),
            ("problems", self.problems().len()),
        ];
        writeln!(f, "| {:<38} | {:>7} |", "chaos run", "count")?;
        writeln!(f, "|{:-<40}|{:->9}|", "", "")?;
        for (name, n) in rows {
            writeln!(f, "| {name:<38} | {n:>7} |")?;
        }
        Ok(())
    }
}

/// Starts a stack on `root` with the plan's faults and kills, runs the orders, waits for the
/// saga (at most the saga timeout and a margin after the last order) and checks it.
pub async fn run(root: &std::path::Path, plan: &Plan) -> anyhow::Result<Report> {
    let mut o = Options::new(root);
    o.build = false;
    o.install_moto = true;
    o.aws_endpoint = plan.aws_endpoint.clone();
    o.prefix = Some(format!(
        "chaos{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    ));
    // Longer than the events functions' timeout (15 s), as the template requires, so a slow
    // message is never handed out twice at once; short enough that a retry comes in seconds.
    o.visibility_timeout = Some(20);
    o.faults = Some(plan.faults);
    o.kill_every = plan.kill_every;
    o.seed = plan.seed;
    o.schedule_period = Some(plan.schedule_period);
    o.parameters.insert(
        "SagaTimeoutMinutes".into(),
        plan.saga_timeout_minutes.to_string(),
    );
    o.print = std::env::var("TEST_LOG").is_ok();
    o.echo_logs = std::env::var("TEST_LOG").is_ok();
    let stack = Arc::new(Stack::start(o).await.context("starting the local stack")?);
    let started = Instant::now();

    let placed = place_all(&stack, plan).await;
    let mut report = Report {
        orders: plan.orders,
        rejected: plan.orders - placed.len(),
        ..Report::default()
    };

    // The saga owes every order a terminal state within the timeout; the timeout's schedule
    // ticks every `schedule_period`, and a cancellation then takes a few hops to settle.
    let patience = Duration::from_secs(u64::from(plan.saga_timeout_minutes) * 60)
        + plan.schedule_period * 2
        + Duration::from_secs(45);
    let mut seen = settle(&stack, &placed, patience).await?;
    if !seen.values().all(Seen::settled) {
        report.redriven = redrive_consumer_dlqs(&stack).await?;
        if report.redriven > 0 {
            seen = settle(&stack, &placed, patience).await?;
        }
    }

    report.faults_injected = stack.faults_injected();
    report.processes_killed = stack.killed.load(std::sync::atomic::Ordering::Relaxed);
    for p in &placed {
        let s = seen.get(&p.id).cloned().unwrap_or_default();
        let id = p.id.clone();
        match s.status {
            Some(orders::domain::Status::Confirmed) => report.confirmed += 1,
            Some(orders::domain::Status::Cancelled) => report.cancelled += 1,
            _ => {}
        }
        if s.timed_out {
            report.timed_out += 1;
        }
        if !s.terminal() {
            report.lost.push(id.clone());
        }
        if s.orders_of_customer > 1 || s.notifications.values().any(|n| *n > 1) {
            report.duplicated.push(id.clone());
        }
        if s.held_wrongly() {
            report.held_wrongly.push(id.clone());
        }
        if s.status == Some(orders::domain::Status::Confirmed) && !s.captured {
            report.not_captured.push(id.clone());
        }
        let wrong = match p.kind {
            Kind::Decline | Kind::Unavailable => {
                s.status == Some(orders::domain::Status::Confirmed)
            }
            Kind::CustomerCancels | Kind::FlakyVoid => {
                p.cancel_acknowledged && s.status == Some(orders::domain::Status::Confirmed)
            }
            Kind::Approve | Kind::Flaky | Kind::FlakyCapture => false,
        };
        if wrong {
            report.wrong_state.push(id.clone());
        }
        if s.terminal()
            && s.about()
                .is_some_and(|a| s.notifications.get(a).copied().unwrap_or(0) == 0)
        {
            report.not_notified.push(id);
        }
    }
    let (dlq_messages, unaccounted) = dead_letters(&stack, &placed, &seen).await?;
    report.dlq_messages = dlq_messages;
    report.dlq_unaccounted = unaccounted;
    report.duration = started.elapsed();
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
    Ok(report)
}

/// Observes the orders until every one settled or `patience` passed.
async fn settle(
    stack: &Stack,
    placed: &[Placed],
    patience: Duration,
) -> anyhow::Result<BTreeMap<String, Seen>> {
    let deadline = Instant::now() + patience;
    loop {
        let seen = observe(stack, placed).await?;
        if seen.values().all(Seen::settled) || Instant::now() > deadline {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Moves the messages of every consumer queue's DLQ back to its queue, as the runbook's
/// `make redrive ARGS="move --dlq …"` does; returns how many moved.
async fn redrive_consumer_dlqs(stack: &Stack) -> anyhow::Result<usize> {
    let options = redrive::MoveOptions {
        wait_time_s: 0,
        ..redrive::MoveOptions::default()
    };
    let mut moved = 0;
    for (logical, queue) in &stack.resources.queues {
        let Ok(dlq) = stack.resources.dlq_url(logical) else {
            continue;
        };
        let result = redrive::redrive(&stack.clients.sqs, dlq, Some(&queue.url), &options)
            .await
            .with_context(|| format!("redriving the DLQ of {logical}"))?;
        if let redrive::MoveResult::Moved(r) = result {
            moved += r.moved;
        }
    }
    Ok(moved)
}

/// Places every order of the plan, `concurrency` at a time; returns those the API accepted.
async fn place_all(stack: &Arc<Stack>, plan: &Plan) -> Vec<Placed> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default();
    let gate = Arc::new(tokio::sync::Semaphore::new(plan.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.orders {
        let (stack, http, gate) = (stack.clone(), http.clone(), gate.clone());
        let customer = format!("chaos-{}-{i}", plan.seed);
        let kind = Kind::of(i);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let token = stack.token(&customer, &["shop/orders"]).ok()?;
            let base = &stack.api_url;
            let body = json!({"lines": [{"sku": "SKU-1", "quantity": 1,
                "unit_price": {"amount": 1000 + i, "currency": "EUR"}}],
                "card_token": kind.card_token()});
            let key = uuid::Uuid::new_v4().to_string();
            let order = send(&http, |h| {
                h.post(format!("{base}/v1/orders"))
                    .bearer_auth(&token)
                    .header("idempotency-key", &key)
                    .json(&body)
            })
            .await?;
            let id = order["id"].as_str()?.to_owned();
            let cancel_acknowledged = kind.customer_cancels()
                && send(&http, |h| {
                    h.post(format!("{base}/v1/orders/{id}/cancel"))
                        .bearer_auth(&token)
                })
                .await
                .is_some();
            Some(Placed {
                id,
                customer,
                kind,
                cancel_acknowledged,
            })
        });
    }
    let mut placed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(p)) = done {
            placed.push(p);
        }
    }
    placed
}

/// Sends a request until it gets a 2xx (the body) or a 4xx other than 409 and 429 (`None`),
/// retrying lost answers, 5xx, 409 (a concurrent change: retry) and 429 with backoff, at most
/// 10 times.
async fn send(
    http: &reqwest::Client,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Option<Value> {
    for attempt in 1..=10u64 {
        match request(http).send().await {
            Ok(r) if r.status().is_success() => return r.json().await.ok(),
            Ok(r) if r.status().is_client_error() && ![409, 429].contains(&r.status().as_u16()) => {
                return None;
            }
            _ => tokio::time::sleep(Duration::from_millis(300 * attempt)).await,
        }
    }
    None
}

/// Reads each order, its customer's orders and notifications and its ledger straight from the
/// tables.
async fn observe(stack: &Stack, placed: &[Placed]) -> anyhow::Result<BTreeMap<String, Seen>> {
    // Each table's own client: a stack of its own runs a moto per table.
    let table = |id: &str| -> anyhow::Result<_> {
        let name = stack.resources.table(id)?.to_owned();
        Ok((stack.clients.dynamodb_of(&name).clone(), name))
    };
    let (db, name) = table("OrdersTable")?;
    let orders = orders::adapters::dynamodb::DynamoOrders::new(db, name);
    let (db, name) = table("PaymentsTable")?;
    let payments = payments::adapters::dynamodb::DynamoPayments::new(db, name);
    let (db, name) = table("NotifyTable")?;
    let notes = notify::adapters::dynamodb::DynamoNotifications::new(db, name);
    let mut out = BTreeMap::new();
    for p in placed {
        let id = OrderId::parse(&p.id).context("an order id the API returned")?;
        let customer = CustomerId::new(p.customer.clone());
        let order = orders.get(&id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut seen = Seen {
            status: order.as_ref().map(|o| o.status),
            timed_out: order
                .as_ref()
                .is_some_and(|o| o.cancellation_reason == Some(CancellationReason::PaymentTimeout)),
            orders_of_customer: orders
                .list_for_customer(&customer, 10, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .orders
                .len(),
            ..Seen::default()
        };
        let page = notes
            .list_for_customer(&customer, 10, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for n in page.notifications.iter().filter(|n| n.order_id == p.id) {
            *seen.notifications.entry(n.about.clone()).or_default() += 1;
        }
        let ledger = |op| payments.find(op, &p.id);
        let charge = ledger(Operation::Charge)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let authorized = charge.is_some_and(|c| c.decline_reason.is_none());
        let voided = ledger(Operation::Void)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_some();
        seen.refunded = ledger(Operation::Refund)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_some();
        seen.captured = ledger(Operation::Capture)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_some();
        seen.held = authorized && !voided && !seen.refunded && !seen.captured;
        out.insert(p.id.clone(), seen);
    }
    Ok(out)
}

/// Counts the messages in every dead-letter queue and returns those no terminal order of the
/// run accounts for. A message naming a terminal order was handled by the saga (the timeout
/// cancelled it); a missed tick of the saga timeout's schedule is covered by the next tick.
async fn dead_letters(
    stack: &Stack,
    placed: &[Placed],
    seen: &BTreeMap<String, Seen>,
) -> anyhow::Result<(usize, Vec<String>)> {
    let sqs = &stack.clients.sqs;
    let mut total = 0;
    let mut unaccounted = Vec::new();
    for (logical, queue) in &stack.resources.queues {
        if !logical.ends_with("Dlq") {
            continue;
        }
        // Read without deleting: each message stays invisible for the rest of the scan.
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .context("reading a dead-letter queue")?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                total += 1;
                let body = m.body.unwrap_or_default();
                let names_terminal_order = placed
                    .iter()
                    .any(|p| body.contains(&p.id) && seen.get(&p.id).is_some_and(Seen::terminal));
                let missed_tick = logical == "OrdersTimeoutDlq";
                if !names_terminal_order && !missed_tick {
                    unaccounted.push(format!(
                        "{logical}: {}",
                        body.chars().take(160).collect::<String>()
                    ));
                }
            }
        }
    }
    Ok((total, unaccounted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: orders::domain::Status) -> Seen {
        Seen {
            status: Some(status),
            orders_of_customer: 1,
            ..Seen::default()
        }
    }

    #[test]
    fn a_cancelled_order_with_an_authorization_neither_voided_nor_refunded_is_held_wrongly() {
        let mut s = seen(orders::domain::Status::Cancelled);
        s.held = true;
        assert!(s.held_wrongly());
        assert!(!s.settled());
        s.held = false;
        s.captured = true;
        assert!(s.held_wrongly(), "captured and not refunded");
        s.refunded = true;
        assert!(!s.held_wrongly());
    }

    #[test]
    fn a_confirmed_order_is_settled_once_captured_and_notified() {
        let mut s = seen(orders::domain::Status::Confirmed);
        assert!(!s.settled());
        s.captured = true;
        assert!(!s.settled(), "not notified yet");
        s.notifications.insert("OrderConfirmed".into(), 1);
        assert!(s.settled());
    }

    #[test]
    fn a_report_lists_each_broken_guarantee_and_a_clean_one_none() {
        let mut r = Report::default();
        assert!(r.problems().is_empty());
        r.duplicated.push("o-1".into());
        r.dlq_unaccounted.push("PaymentsRelayDlq: {}".into());
        let problems = r.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("duplicated: 1 (o-1)"));
        assert!(r.to_string().contains("| problems"));
    }
}
