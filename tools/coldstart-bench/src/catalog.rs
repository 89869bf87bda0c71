//! The functions the bench runs, the realistic event each gets (built from the services'
//! `tests/fixtures/`, with fresh ids per invocation so the warm invocation does the same work as
//! the first), and what counts as a successful answer.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde_json::{Value, json};

use crate::world::{CUSTOMER, World, lock};

/// Which hello-world baseline a function is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `lambda_runtime` functions (SQS and stream consumers): `hello-runtime`.
    Runtime,
    /// `lambda_http` functions: `hello-http`.
    Http,
}

/// The event a function is invoked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `GET /v1/orders/{id}` of an order of the fixture's customer.
    GetOrder,
    /// The payments fixture `GET /v1/payments/{orderId}`, of an order paid during the run.
    GetPayment,
    /// The notify fixture `GET /v1/notifications`.
    ListNotifications,
    /// SQS batch of one `PaymentAuthorized` for a freshly seeded order.
    OrdersQueue,
    /// SQS batch of one `OrderPlaced` (payments fixture) for a new order id.
    PaymentsQueue,
    /// SQS batch of one `OrderConfirmed` (notify fixture) for a new order id.
    NotifyQueue,
    /// DynamoDB stream batch of one outbox INSERT of `source`'s service.
    Stream { source: &'static str },
    /// The EventBridge schedule's "Scheduled Event" (the saga timeout's sweep).
    Scheduled,
    /// `{}`.
    Hello,
    /// The orders fixture's API Gateway v2 request, unchanged.
    HelloHttp,
}

/// How the function is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A cargo binary of the workspace.
    Binary(&'static str),
    /// `python -m awslambdaric <handler>` in `tools/coldstart-bench/python`.
    Python { handler: &'static str },
}

/// One function of the bench.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: &'static str,
    pub kind: Kind,
    pub program: Program,
    pub event: EventKind,
    /// Whether this is a hello-world baseline.
    pub baseline: bool,
}

const fn rust(name: &'static str, kind: Kind, event: EventKind) -> Function {
    Function {
        name,
        kind,
        program: Program::Binary(name),
        event,
        baseline: false,
    }
}

/// A service's relay function: the shared `outbox-relay` binary on a stream of `source` events.
const fn relay(name: &'static str, source: &'static str) -> Function {
    Function {
        program: Program::Binary("outbox-relay"),
        ..rust(name, Kind::Runtime, EventKind::Stream { source })
    }
}

/// Every function in run order: the event consumers of a service run before its HTTP function,
/// so the HTTP function reads data they wrote.
pub fn rust_functions() -> Vec<Function> {
    use EventKind::*;
    use Kind::*;
    vec![
        rust("orders-events", Runtime, OrdersQueue),
        rust("orders-timeout", Runtime, Scheduled),
        rust("orders-http", Http, GetOrder),
        relay("orders-relay", "shop.orders"),
        rust("payments-events", Runtime, PaymentsQueue),
        rust("payments-http", Http, GetPayment),
        relay("payments-relay", "shop.payments"),
        rust("notify-events", Runtime, NotifyQueue),
        rust("notify-http", Http, ListNotifications),
        relay("notify-relay", "shop.notify"),
        Function {
            baseline: true,
            ..rust("hello-runtime", Runtime, Hello)
        },
        Function {
            baseline: true,
            ..rust("hello-http", Http, HelloHttp)
        },
    ]
}

/// The Python equivalents of `orders-http` (GET an order: one DynamoDB GetItem).
pub fn python_functions() -> Vec<Function> {
    let python = |name, handler| Function {
        name,
        kind: Kind::Http,
        program: Program::Python { handler },
        event: EventKind::GetOrder,
        baseline: false,
    };
    vec![
        python("python-boto3", "get_order.handler"),
        python("python-powertools", "get_order_powertools.handler"),
    ]
}

fn fixture(root: &Path, service: &str, name: &str) -> anyhow::Result<Value> {
    let path: PathBuf = root
        .join("services")
        .join(service)
        .join("tests/fixtures")
        .join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn fresh_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An API Gateway v2 request of the fixture's customer for `GET path`.
fn http_get(root: &Path, route_key: &str, path: &str) -> anyhow::Result<Value> {
    let mut event = fixture(root, "orders", "apigw-v2-request.json")?;
    event["routeKey"] = json!(route_key);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route_key);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["requestId"] = json!(fresh_id());
    Ok(event)
}

/// One SQS record (the payments fixture's shape) carrying `eventbridge_event` as its body.
fn sqs_batch(root: &Path, eventbridge_event: &Value) -> anyhow::Result<Value> {
    let mut record = fixture(root, "payments", "order-placed.sqs-record.json")?;
    record["messageId"] = json!(fresh_id());
    record["body"] = json!(serde_json::to_string(eventbridge_event)?);
    Ok(json!({ "Records": [record] }))
}

/// An EventBridge event around an envelope with a fresh id.
fn eventbridge(detail_type: &str, source: &str, mut envelope: Value) -> Value {
    envelope["id"] = json!(fresh_id());
    envelope["time"] = json!(chrono::Utc::now().to_rfc3339());
    json!({
        "version": "0", "id": fresh_id(), "detail-type": detail_type, "source": source,
        "account": "123456789012", "time": chrono::Utc::now().to_rfc3339(),
        "region": crate::world::REGION, "resources": [], "detail": envelope,
    })
}

/// The envelope of the payments fixture's `OrderPlaced`, for a new order id.
fn order_placed(root: &Path) -> anyhow::Result<Value> {
    let record = fixture(root, "payments", "order-placed.sqs-record.json")?;
    let body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
    let mut envelope = body["detail"].clone();
    envelope["data"]["order_id"] = json!(fresh_id());
    Ok(envelope)
}

/// A DynamoDB stream batch of one INSERT of an outbox item (as `kit::outbox` writes it).
fn stream_batch(root: &Path, source: &str) -> anyhow::Result<Value> {
    let mut envelope = order_placed(root)?;
    let id = fresh_id();
    envelope["id"] = json!(id);
    envelope["source"] = json!(source);
    let now = chrono::Utc::now();
    envelope["time"] = json!(now.to_rfc3339());
    let keys = json!({"pk": {"S": format!("OUTBOX#{id}")}, "sk": {"S": "OUTBOX"}});
    let mut image = keys.clone();
    image["source"] = json!({"S": source});
    image["detail_type"] = json!({"S": envelope["type"]});
    image["envelope"] = json!({"S": serde_json::to_string(&envelope)?});
    image["expires_at"] = json!({"N": (now.timestamp() + 7 * 24 * 3600).to_string()});
    Ok(json!({"Records": [{
        "eventID": fresh_id(),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": crate::world::REGION,
        "dynamodb": {
            "ApproximateCreationDateTime": now.timestamp(),
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": format!("{}", now.timestamp_micros()),
            "SizeBytes": 512,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/bench/stream/2026-11-27T00:00:00.000",
    }]}))
}

impl EventKind {
    /// A fresh event, with the data it refers to in place.
    pub async fn build(self, root: &Path, world: &World) -> anyhow::Result<Value> {
        match self {
            EventKind::GetOrder => {
                let id = world.some_order().await?;
                http_get(root, "GET /v1/orders/{id}", &format!("/v1/orders/{id}")).map(|mut e| {
                    e["pathParameters"] = json!({"id": id});
                    e
                })
            }
            EventKind::GetPayment => {
                let mut event = fixture(root, "payments", "get-payment.json")?;
                if let Some(order) = lock(&world.paid_orders).last() {
                    let path = format!("/v1/payments/{order}");
                    event["rawPath"] = json!(path);
                    event["requestContext"]["http"]["path"] = json!(path);
                    event["pathParameters"] = json!({"orderId": order});
                }
                Ok(event)
            }
            EventKind::ListNotifications => fixture(root, "notify", "list-notifications.json"),
            EventKind::OrdersQueue => {
                let order = world.seed_order().await?;
                let envelope = json!({
                    "id": fresh_id(), "type": "PaymentAuthorized", "version": 1,
                    "source": "shop.payments", "time": chrono::Utc::now().to_rfc3339(),
                    "correlation_id": fresh_id(), "causation_id": fresh_id(),
                    "data": {
                        "order_id": order, "customer_id": CUSTOMER,
                        "amount": {"amount": 2500, "currency": "EUR"},
                        "payment_id": fresh_id(), "authorized_at": chrono::Utc::now().to_rfc3339(),
                    },
                });
                sqs_batch(
                    root,
                    &eventbridge("PaymentAuthorized", "shop.payments", envelope),
                )
            }
            EventKind::PaymentsQueue => {
                let envelope = order_placed(root)?;
                let order = envelope["data"]["order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                lock(&world.paid_orders).push(order);
                sqs_batch(root, &eventbridge("OrderPlaced", "shop.orders", envelope))
            }
            EventKind::NotifyQueue => {
                let mut event = fixture(root, "notify", "order-confirmed.json")?;
                let mut envelope = event["detail"].take();
                envelope["data"]["order_id"] = json!(fresh_id());
                sqs_batch(
                    root,
                    &eventbridge("OrderConfirmed", "shop.orders", envelope),
                )
            }
            EventKind::Stream { source } => stream_batch(root, source),
            EventKind::Scheduled => Ok(json!({
                "version": "0", "id": fresh_id(), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012",
                "time": chrono::Utc::now().to_rfc3339(), "region": crate::world::REGION,
                "resources": ["arn:aws:events:eu-west-1:123456789012:rule/bench-timeout"],
                "detail": {},
            })),
            EventKind::Hello => Ok(json!({})),
            EventKind::HelloHttp => fixture(root, "orders", "apigw-v2-request.json"),
        }
    }

    /// Whether `body` is a successful answer to this event: HTTP 200, a batch response
    /// without item failures, or (a scheduled job) any JSON report.
    pub fn check(self, kind: Kind, body: &[u8]) -> anyhow::Result<()> {
        if self == EventKind::Hello {
            return Ok(());
        }
        if self == EventKind::Scheduled {
            return serde_json::from_slice::<Value>(body)
                .map(drop)
                .map_err(|e| anyhow!("the job's report is not JSON ({e})"));
        }
        let answer: Value = serde_json::from_slice(body).map_err(|e| {
            anyhow!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        })?;
        match kind {
            Kind::Http => match answer["statusCode"].as_u64() {
                Some(200) => Ok(()),
                _ => Err(anyhow!("HTTP answer is not 200: {answer}")),
            },
            Kind::Runtime => match answer["batchItemFailures"].as_array() {
                Some(failures) if failures.is_empty() => Ok(()),
                Some(_) => Err(anyhow!("batch item failures: {answer}")),
                None => Err(anyhow!("not a batch response: {answer}")),
            },
        }
    }
}
