//! The functions the bench runs, the event each gets, and what counts as a successful answer.
//!
//! The functions are the template's (every service stack's function that serves an event), so a
//! new service is benched without an edit here. The functions this catalog knows get a realistic
//! event (built from the services' `tests/fixtures/`, with fresh ids per invocation so the warm
//! invocation does the same work as the first); any other gets one derived from its template
//! events: a GET of its first GET route, an empty SQS batch, an outbox INSERT of its service
//! (every relay runs the same binary), or the schedule's event.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde_json::{Value, json};

use local_stack::functions::FunctionSpec;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Stream { source: String },
    /// A function the catalog does not know: a GET of one of its routes, each path parameter a
    /// fresh id (200 or 404 is an answer).
    Route { method: String, path: String },
    /// A consumer the catalog does not know: an SQS batch without records.
    EmptyBatch,
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
    Binary(String),
    /// `python -m awslambdaric <handler>` in `tools/bench/coldstart-bench/python`.
    Python { handler: &'static str },
}

/// One function of the bench.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub kind: Kind,
    pub program: Program,
    pub event: EventKind,
    /// Whether this is a hello-world baseline.
    pub baseline: bool,
}

fn rust(name: &str, kind: Kind, event: EventKind) -> Function {
    Function {
        name: name.to_owned(),
        kind,
        program: Program::Binary(name.to_owned()),
        event,
        baseline: false,
    }
}

/// The realistic event of a function this catalog knows.
fn known(name: &str) -> Option<EventKind> {
    use EventKind::*;
    Some(match name {
        "orders-events" => OrdersQueue,
        "orders-timeout" => Scheduled,
        "orders-http" => GetOrder,
        "payments-events" => PaymentsQueue,
        "payments-http" => GetPayment,
        "notify-events" => NotifyQueue,
        "notify-http" => ListNotifications,
        _ => return None,
    })
}

/// The event of a function the catalog does not know, from its template events.
fn derived(spec: &FunctionSpec) -> Option<EventKind> {
    if let Some(service) = spec.env.get(kit::relay::SERVICE_VAR) {
        return Some(EventKind::Stream {
            source: format!("{}.{service}", crate::world::APP),
        });
    }
    if let Some(route) = spec.routes.iter().find(|r| r.method == "GET") {
        return Some(EventKind::Route {
            method: route.method.clone(),
            path: route.path.clone(),
        });
    }
    if !spec.sqs.is_empty() {
        return Some(EventKind::EmptyBatch);
    }
    if !spec.schedules.is_empty() {
        return Some(EventKind::Scheduled);
    }
    None
}

/// Where a function runs in a service's turn: its consumers and jobs first, so that its HTTP
/// function reads data they wrote, then the relay.
fn turn(spec: &FunctionSpec) -> u8 {
    match () {
        () if !spec.sqs.is_empty() => 0,
        () if !spec.schedules.is_empty() => 1,
        () if !spec.routes.is_empty() => 2,
        () => 3,
    }
}

/// Every function of the template that serves an event (`specs`: the template's functions), in
/// run order, then the two hello-world baselines.
pub fn rust_functions<'a>(specs: impl IntoIterator<Item = &'a FunctionSpec>) -> Vec<Function> {
    let mut specs: Vec<&FunctionSpec> = specs.into_iter().collect();
    specs.sort_by_key(|s| (service_of(s), turn(s), s.short_name.clone()));
    let mut functions: Vec<Function> = specs
        .into_iter()
        .filter_map(|spec| {
            let event = known(&spec.short_name).or_else(|| derived(spec))?;
            let kind = if spec.routes.is_empty() {
                Kind::Runtime
            } else {
                Kind::Http
            };
            Some(Function {
                program: Program::Binary(spec.binary.clone()),
                ..rust(&spec.short_name, kind, event)
            })
        })
        .collect();
    functions.extend([
        Function {
            baseline: true,
            ..rust("hello-runtime", Kind::Runtime, EventKind::Hello)
        },
        Function {
            baseline: true,
            ..rust("hello-http", Kind::Http, EventKind::HelloHttp)
        },
    ]);
    functions
}

/// The service of a function: its short name less its kind (`orders-http` → `orders`).
fn service_of(spec: &FunctionSpec) -> String {
    spec.short_name
        .rsplit_once('-')
        .map_or(spec.short_name.as_str(), |(service, _)| service)
        .to_owned()
}

/// The Python equivalents of `orders-http` (GET an order: one DynamoDB GetItem).
pub fn python_functions() -> Vec<Function> {
    let python = |name: &str, handler| Function {
        name: name.to_owned(),
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
    pub async fn build(&self, root: &Path, world: &World) -> anyhow::Result<Value> {
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
            EventKind::Route { method, path } => {
                let mut parameters = serde_json::Map::new();
                let raw: Vec<String> = path
                    .split('/')
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => {
                                let id = fresh_id();
                                parameters.insert(name.to_owned(), json!(id));
                                id
                            }
                            None => segment.to_owned(),
                        }
                    })
                    .collect();
                let mut event = http_get(root, &format!("{method} {path}"), &raw.join("/"))?;
                event["requestContext"]["http"]["method"] = json!(method);
                if !parameters.is_empty() {
                    event["pathParameters"] = Value::Object(parameters);
                }
                Ok(event)
            }
            EventKind::EmptyBatch => Ok(json!({ "Records": [] })),
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

    /// Whether `body` is a successful answer to this event: HTTP 200 (or 404 to a GET of fresh
    /// ids), a batch response
    /// without item failures, or (a scheduled job) any JSON report.
    pub fn check(&self, kind: Kind, body: &[u8]) -> anyhow::Result<()> {
        if *self == EventKind::Hello {
            return Ok(());
        }
        if *self == EventKind::Scheduled {
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
                Some(404) if matches!(self, EventKind::Route { .. }) => Ok(()),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn specs() -> Vec<FunctionSpec> {
        crate::world::template_functions(&crate::world::repo_root()).unwrap()
    }

    /// `name`'s spec, renamed as the same kind of function of a service the catalog does not know.
    fn of_new_service(name: &str) -> FunctionSpec {
        let mut spec = specs().into_iter().find(|s| s.short_name == name).unwrap();
        spec.short_name = name.replace("orders", "widgets");
        if spec.env.contains_key(kit::relay::SERVICE_VAR) {
            spec.env
                .insert(kit::relay::SERVICE_VAR.into(), "widgets".into());
        }
        spec
    }

    #[test]
    fn every_function_of_the_template_that_serves_an_event_is_benched() {
        let specs = specs();
        let benched: Vec<String> = rust_functions(&specs)
            .into_iter()
            .filter(|f| !f.baseline)
            .map(|f| f.name)
            .collect();
        for spec in &specs {
            let serves = !(spec.routes.is_empty()
                && spec.sqs.is_empty()
                && spec.streams.is_empty()
                && spec.schedules.is_empty());
            assert_eq!(
                benched.contains(&spec.short_name),
                serves,
                "{}",
                spec.short_name
            );
        }
    }

    #[test]
    fn a_function_the_catalog_does_not_know_gets_an_event_from_its_template_events() {
        let new = [
            of_new_service("orders-http"),
            of_new_service("orders-events"),
            of_new_service("orders-relay"),
        ];
        let functions = rust_functions(&new);
        let event = |name: &str| {
            functions
                .iter()
                .find(|f| f.name == name)
                .map(|f| (f.kind, f.event.clone()))
                .unwrap()
        };
        assert!(matches!(
            event("widgets-http"),
            (Kind::Http, EventKind::Route { method, .. }) if method == "GET"
        ));
        assert_eq!(
            event("widgets-events"),
            (Kind::Runtime, EventKind::EmptyBatch)
        );
        assert_eq!(
            event("widgets-relay"),
            (
                Kind::Runtime,
                EventKind::Stream {
                    source: "shop.widgets".into()
                }
            )
        );
        // A consumer runs before the HTTP function of its service, and the relay last.
        let order: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            &order[..3],
            ["widgets-events", "widgets-http", "widgets-relay"]
        );
    }
}
