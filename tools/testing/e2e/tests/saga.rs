//! The order → payment → notification saga end to end: the whole application from
//! `infra/platform.yaml` and `services/*/template.yaml` under the local runner (real function binaries, moto), driven over
//! HTTP like a client would. Each test starts its own stack (own resource-name prefix).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use local_stack::{Options, Stack};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

async fn stack() -> Stack {
    stack_with(|_| {}).await
}

/// A stack whose options `configure` adjusts after the defaults of [`stack`].
async fn stack_with(configure: impl FnOnce(&mut Options)) -> Stack {
    let root = testkit::repo_root();
    tokio::task::block_in_place(testkit::build_functions);
    let mut o = Options::new(root);
    o.build = false;
    o.aws_endpoint = Some(testkit::moto().endpoint.clone());
    o.prefix = Some(format!(
        "e{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    // Short visibility timeouts, so a failed delivery is retried in seconds, but not so short
    // that a slow (successful) batch on a loaded machine is redelivered up to the DLQ.
    o.visibility_timeout = Some(5);
    o.print = std::env::var("TEST_LOG").is_ok();
    o.echo_logs = std::env::var("TEST_LOG").is_ok();
    configure(&mut o);
    Stack::start(o).await.expect("the local stack starts")
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(stack: &Stack, customer: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: stack.api_url.clone(),
            token: stack.token(customer, &["shop/orders"]).unwrap(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value, correlation: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("x-correlation-id", correlation)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Places an order paid with `card_token`; returns its id.
    async fn place(&self, card_token: &str, correlation: &str) -> String {
        let (status, order) = self
            .post(
                "/v1/orders",
                &json!({"lines": [{"sku": "SKU-1", "quantity": 2,
                    "unit_price": {"amount": 1250, "currency": "EUR"}}],
                    "card_token": card_token}),
                correlation,
            )
            .await;
        assert_eq!(status, 201, "place order: {order}");
        assert_eq!(order["status"], "PENDING");
        order["id"].as_str().unwrap().to_owned()
    }

    /// Polls `GET path` until `check` accepts the body.
    async fn until(&self, what: &str, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.until_within(DEADLINE, what, path, check).await
    }

    /// Polls `GET path` until `check` accepts the body, failing after `limit`.
    async fn until_within(
        &self,
        limit: Duration,
        what: &str,
        path: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn order_status(&self, id: &str, status: &str) -> Value {
        self.until(
            &format!("order {id} {status}"),
            &format!("/v1/orders/{id}"),
            |o| o["status"] == status,
        )
        .await
    }

    async fn notification(&self, order: &str, about: &str) -> Value {
        self.until(
            &format!("a {about} notification for {order}"),
            "/v1/notifications?limit=100",
            |page| find_notification(page, order, about).is_some(),
        )
        .await;
        let (_, page) = self.get("/v1/notifications?limit=100").await;
        find_notification(&page, order, about).unwrap()
    }
}

fn find_notification(page: &Value, order: &str, about: &str) -> Option<Value> {
    page["items"]
        .as_array()?
        .iter()
        .find(|n| n["order_id"] == order && n["about"] == about)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_payment_confirms_the_order_and_notifies_the_customer() {
    let stack = stack().await;
    let api = Api::new(&stack, &testkit::unique("happy"));
    let correlation = testkit::unique("corr");
    let id = api.place("tok_approve", &correlation).await;
    api.order_status(&id, "CONFIRMED").await;
    let payment = api
        .until("payment", &format!("/v1/payments/{id}"), |p| {
            p["status"] == "CAPTURED"
        })
        .await;
    assert_eq!(payment["amount"]["amount"], 2500);
    let n = api.notification(&id, "OrderConfirmed").await;
    assert_eq!(n["template"], "order-confirmed");
    // This stack saw only this order: every event delivery that carries a correlation id
    // carries the one the client sent, through orders, payments and notify (HTTP deliveries
    // are left out: each poll has its own).
    let deliveries = stack.reporter.deliveries();
    let correlated: Vec<_> = deliveries
        .iter()
        .filter(|d| !d.function.ends_with("-http"))
        .filter_map(|d| {
            d.correlation_id
                .as_deref()
                .map(|c| (d.function.as_str(), c))
        })
        .collect();
    for (function, corr) in &correlated {
        assert_eq!(
            *corr, correlation,
            "{function} ran with another correlation id"
        );
    }
    for service in ["orders-events", "payments-events", "notify-events"] {
        assert!(
            correlated.iter().any(|(f, _)| f.contains(service)),
            "no correlated delivery to {service}: {deliveries:?}"
        );
    }
}

/// Every JSON log line the stack's functions wrote, with the function's binary name.
fn log_lines(stack: &Stack) -> Vec<(String, Value)> {
    let mut lines = Vec::new();
    for (binary, pool) in &stack.functions {
        let text = std::fs::read_to_string(pool.log_file()).unwrap_or_default();
        lines.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|l| l.get("_aws").is_none())
                .map(|l| (binary.clone(), l)),
        );
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_one_saga_across_the_three_services_carries_one_trace_id() {
    // At debug level every hop logs inside its message (its DynamoDB steps), not only the
    // hops that have something to say at info.
    let debug = BTreeMap::from([("AWS_LAMBDA_LOG_LEVEL".to_owned(), "DEBUG".to_owned())]);
    let stack = stack_with(|o| {
        for binary in [
            "orders-http",
            "orders-relay",
            "orders-events",
            "payments-events",
            "payments-relay",
            "notify-events",
            "notify-relay",
        ] {
            o.extra_env.insert(binary.into(), debug.clone());
        }
    })
    .await;
    let api = Api::new(&stack, &testkit::unique("traced"));
    let correlation = testkit::unique("corr");
    let id = api.place("tok_approve", &correlation).await;
    api.order_status(&id, "CONFIRMED").await;
    api.notification(&id, "OrderConfirmed").await;
    // The notify relay publishes NotificationSent last.
    let started = Instant::now();
    let saga = loop {
        let saga: Vec<(String, Value)> = log_lines(&stack)
            .into_iter()
            .filter(|(_, l)| l["correlation_id"] == correlation.as_str())
            .collect();
        let notify_published = saga
            .iter()
            .any(|(f, l)| f == "notify-relay" && l["message"] == "event published");
        if notify_published || started.elapsed() > DEADLINE {
            break saga;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let trace = saga
        .iter()
        .find(|(f, _)| f == "orders-http")
        .and_then(|(_, l)| l["xray_trace_id"].as_str())
        .unwrap_or_else(|| panic!("no traced orders-http line: {saga:#?}"))
        .to_owned();
    assert!(trace.starts_with("1-"), "{trace}");
    for (function, line) in &saga {
        assert_eq!(
            line["xray_trace_id"].as_str(),
            Some(trace.as_str()),
            "{function} logged a line of this saga outside its trace: {line}"
        );
        assert!(line["function_version"].is_string(), "{line}");
    }
    for hop in [
        "orders-http",
        "orders-relay",
        "payments-events",
        "payments-relay",
        "orders-events",
        "notify-events",
        "notify-relay",
    ] {
        assert!(
            saga.iter().any(|(f, _)| f == hop),
            "no line of this saga from {hop}: {saga:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_cancels_the_order_and_notifies_the_customer() {
    let stack = stack().await;
    let api = Api::new(&stack, &testkit::unique("decline"));
    let id = api
        .place("tok_decline_card", &testkit::unique("corr"))
        .await;
    let order = api.order_status(&id, "CANCELLED").await;
    assert_eq!(order["cancellation_reason"], "payment_declined");
    let (_, payment) = api.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(payment["status"], "DECLINED", "{payment}");
    let n = api.notification(&id, "OrderCancelled").await;
    assert_eq!(n["template"], "order-cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_confirmed_order_refunds_the_payment() {
    let stack = stack().await;
    let api = Api::new(&stack, &testkit::unique("cancel"));
    let id = api.place("tok_approve", &testkit::unique("corr")).await;
    api.order_status(&id, "CONFIRMED").await;
    // Refunded once captured; a cancel that reaches payments before the capture voids instead.
    api.until("capture", &format!("/v1/payments/{id}"), |p| {
        p["status"] == "CAPTURED"
    })
    .await;
    let (status, body) = api
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({}),
            &testkit::unique("corr"),
        )
        .await;
    assert!((200..300).contains(&status), "cancel: {status} {body}");
    api.until("refund", &format!("/v1/payments/{id}"), |p| {
        p["status"] == "REFUNDED"
    })
    .await;
    let n = api.notification(&id, "PaymentRefunded").await;
    assert_eq!(n["template"], "payment-refunded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_payment_failure_is_retried_until_confirmed() {
    let stack = stack().await;
    let api = Api::new(&stack, &testkit::unique("flaky"));
    let id = api.place("tok_flaky_1", &testkit::unique("corr")).await;
    api.order_status(&id, "CONFIRMED").await;
    // The first delivery to payments-events did fail (and SQS redelivered it).
    let deliveries = stack.reporter.deliveries();
    assert!(
        deliveries
            .iter()
            .any(|d| d.function.ends_with("payments-events")
                && (!d.success || !d.failed_ids.is_empty())),
        "no failed payments-events delivery: {deliveries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_waits_in_the_dlq_until_recovered_and_redriven() {
    let stack = stack().await;
    let api = Api::new(&stack, &testkit::unique("dlq"));
    let id = api.place("tok_unavailable", &testkit::unique("corr")).await;
    let dlq = stack.resources.dlq_url("PaymentsQueue").unwrap().to_owned();
    let sqs = stack.clients.sqs.clone();
    let started = Instant::now();
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let depth: i64 = attrs
            .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if depth >= 1 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the message never reached {dlq}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, order) = api.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(order["status"], "PENDING", "{order}");

    stack
        .set_env(
            "payments-events",
            BTreeMap::from([("PAYMENT_SIMULATOR_RECOVERED".to_owned(), "true".to_owned())]),
        )
        .unwrap();
    stack.restart("payments-events").unwrap();
    let options = redrive::MoveOptions {
        wait_time_s: 0,
        ..redrive::MoveOptions::default()
    };
    let result = redrive::redrive(&sqs, &dlq, None, &options).await.unwrap();
    match result {
        redrive::MoveResult::Moved(report) => {
            assert_eq!(report.moved, 1, "{report:?}");
            assert_eq!(
                report.target_url,
                stack.resources.queue_url("PaymentsQueue").unwrap()
            );
        }
        other => panic!("moto has no StartMessageMoveTask: {other:?}"),
    }
    api.order_status(&id, "CONFIRMED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_payment_never_settles_is_cancelled_by_the_saga_timeout_and_notified() {
    // The template's schedule runs orders-timeout (every 3 s here); a minute is the shortest
    // timeout the template allows.
    let stack = stack_with(|o| {
        o.parameters.insert("SagaTimeoutMinutes".into(), "1".into());
        o.schedule_period = Some(Duration::from_secs(3));
    })
    .await;
    let api = Api::new(&stack, &testkit::unique("timeout"));
    let placed = Instant::now();
    let id = api.place("tok_unavailable", &testkit::unique("corr")).await;

    let order = api
        .until_within(
            Duration::from_secs(180),
            &format!("order {id} cancelled by the saga timeout"),
            &format!("/v1/orders/{id}"),
            |o| o["status"] != "PENDING",
        )
        .await;
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert_eq!(order["cancellation_reason"], "payment_timeout", "{order}");
    assert!(
        placed.elapsed() >= Duration::from_secs(60),
        "cancelled before the timeout: after {:?}",
        placed.elapsed()
    );
    let note = api.notification(&id, "OrderCancelled").await;
    assert_eq!(note["order_id"], id.as_str(), "{note}");
}
