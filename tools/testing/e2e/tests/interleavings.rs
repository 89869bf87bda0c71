//! The saga's invariants under any interleaving (proptest): the three services' event
//! handlers on their in-memory adapters, connected by a simulated bus that delivers the
//! messages of each queue in any order, redelivers any of them, republishes outbox records, and
//! makes any write of orders or payments fail — lost, or committed but reported as failed —
//! while customers place and cancel orders and the saga timeout fires at any moment.
//!
//! After the run the bus is drained without faults. Then, for every order:
//! - at most one authorization;
//! - the order is CONFIRMED or CANCELLED (nothing stays PENDING once the messages flow);
//! - money is held or captured only for a CONFIRMED order, and a CONFIRMED order's payment is
//!   captured;
//! - every cancelled order with a charge ends VOIDED or REFUNDED;
//! - exactly one notification per terminal event (confirmed, cancelled, refunded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use chrono::{Duration, Utc};
use kit::{events::Envelope, ids::OrderId, sqs::Message};
use notify::adapters::memory::MemoryNotifications;
use orders::{
    adapters::memory::MemoryOrders,
    domain::{Order, Status as OrderStatus},
    ports::{IdempotentResponse, OrderRepository, Page, RepositoryError as OrdersError},
};
use payments::{
    adapters::{memory::MemoryPayments, simulator::Simulator},
    domain::{Payment, Status as PaymentStatus},
    ports::{PaymentRepository, RepositoryError as PaymentsError},
};
use proptest::prelude::*;
use serde_json::json;

/// What happens to a write chosen to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing is written.
    Lost,
    /// Everything is written, but the caller is told it failed (a timeout after the commit).
    Ambiguous,
}

/// The fault armed for the next write of orders or payments, if any.
#[derive(Debug, Default)]
struct Faults(Mutex<Option<Fault>>);

impl Faults {
    fn arm(&self, fault: Option<Fault>) {
        *self.0.lock().unwrap() = fault;
    }

    /// Runs `write` through the armed fault (used once).
    async fn write<E>(
        &self,
        write: impl Future<Output = Result<(), E>>,
        failed: impl Fn() -> E,
    ) -> Result<(), E> {
        let fault = self.0.lock().unwrap().take();
        match fault {
            None => write.await,
            Some(Fault::Lost) => Err(failed()),
            Some(Fault::Ambiguous) => {
                write.await?;
                Err(failed())
            }
        }
    }
}

struct FaultyOrders<'a>(&'a MemoryOrders, &'a Faults);

impl OrderRepository for FaultyOrders<'_> {
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, OrdersError> {
        self.0.get(id).await
    }

    async fn list_for_customer(
        &self,
        customer: &kit::ids::CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, OrdersError> {
        self.0.list_for_customer(customer, limit, after).await
    }

    async fn pending_before(
        &self,
        cutoff: chrono::DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, OrdersError> {
        self.0.pending_before(cutoff, limit).await
    }

    async fn count_write(
        &self,
        customer: &kit::ids::CustomerId,
        now: chrono::DateTime<Utc>,
    ) -> Result<kit::rate_limit::Decision, OrdersError> {
        self.0.count_write(customer, now).await
    }

    async fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<(), OrdersError> {
        let write = self.0.insert(order, events, idempotency);
        self.1
            .write(write, || OrdersError::Unavailable("injected".into()))
            .await
    }

    async fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), OrdersError> {
        let write = self
            .0
            .update(order, expected_version, events, processed_event);
        self.1
            .write(write, || OrdersError::Unavailable("injected".into()))
            .await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, OrdersError> {
        self.0.is_processed(event_id).await
    }

    async fn idempotency_record(
        &self,
        key: &kit::idempotency::Key,
    ) -> Result<Option<kit::idempotency::Record>, OrdersError> {
        self.0.idempotency_record(key).await
    }
}

struct FaultyPayments<'a>(&'a MemoryPayments, &'a Faults);

impl PaymentRepository for FaultyPayments<'_> {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, PaymentsError> {
        self.0.get(order_id).await
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), PaymentsError> {
        let write = self.0.insert(payment, events, processed_event);
        self.1
            .write(write, || PaymentsError::Unavailable("injected".into()))
            .await
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), PaymentsError> {
        let write = self
            .0
            .update(payment, expected_version, events, processed_event);
        self.1
            .write(write, || PaymentsError::Unavailable("injected".into()))
            .await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, PaymentsError> {
        self.0.is_processed(event_id).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Queue {
    Orders,
    Payments,
    Notify,
}

/// The queues the bus's rules deliver each event type to (as in the services' templates).
fn routes(event_type: &str) -> &'static [Queue] {
    match event_type {
        "OrderPlaced" => &[Queue::Payments],
        "OrderConfirmed" | "OrderCancelled" => &[Queue::Payments, Queue::Notify],
        "PaymentAuthorized" | "PaymentDeclined" => &[Queue::Orders],
        "PaymentRefunded" => &[Queue::Notify],
        _ => &[],
    }
}

/// One message waiting in a queue.
#[derive(Debug, Clone)]
struct Pending {
    envelope: Envelope,
    receive_count: u32,
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// A customer places an order paying with `token`.
    Place { token: &'static str },
    /// The customer of the `nth` order asks to cancel it.
    Cancel { nth: usize },
    /// The saga timeout fires, with every PENDING order past it.
    TimeOut,
    /// The relays publish what the outboxes hold (`again`: republish everything, as an
    /// operator replaying the outbox would).
    Relay { again: bool },
    /// The `nth` message of `queue` is delivered; `keep` redelivers it later even if it
    /// succeeds (an at-least-once duplicate); `fault` makes the handler's next write fail.
    Deliver {
        queue: Queue,
        nth: usize,
        keep: bool,
        fault: Option<Fault>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let fault = prop_oneof![
        3 => Just(None),
        1 => Just(Some(Fault::Lost)),
        1 => Just(Some(Fault::Ambiguous)),
    ];
    let queue = prop_oneof![
        Just(Queue::Orders),
        Just(Queue::Payments),
        Just(Queue::Notify)
    ];
    let token = prop_oneof![
        4 => Just("tok_approve"),
        1 => Just("tok_decline_insufficient_funds"),
        1 => Just("tok_flaky_1"),
        1 => Just("tok_flaky_capture_1"),
        1 => Just("tok_flaky_void_1"),
        1 => Just("tok_flaky_refund_1"),
    ];
    prop_oneof![
        2 => token.prop_map(|token| Step::Place { token }),
        2 => (0_usize..8).prop_map(|nth| Step::Cancel { nth }),
        1 => Just(Step::TimeOut),
        3 => Just(Step::Relay { again: false }),
        1 => Just(Step::Relay { again: true }),
        10 => (queue, 0_usize..8, prop::bool::weighted(0.2), fault)
            .prop_map(|(queue, nth, keep, fault)| Step::Deliver { queue, nth, keep, fault }),
    ]
}

/// The three services and the bus between them.
#[derive(Default)]
struct World {
    orders: MemoryOrders,
    payments: MemoryPayments,
    notify: MemoryNotifications,
    faults: Faults,
    /// How many outbox records of each service the relay already published.
    relayed: [usize; 3],
    queues: BTreeMap<Queue, Vec<Pending>>,
    placed: Vec<(OrderId, String)>,
}

fn request(
    method: &str,
    path: &str,
    sub: &str,
    body: Option<serde_json::Value>,
) -> lambda_http::Request {
    let mut event = json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": "application/json"},
        "requestContext": {
            "accountId": "1", "apiId": "a", "domainName": "a", "domainPrefix": "a",
            "authorizer": {"jwt": {"claims": {"sub": sub, "scope": "shop/orders"}, "scopes": null}},
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "proptest"},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "30/Nov/2026:10:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

impl World {
    async fn run(&mut self, step: &Step) {
        match step {
            Step::Place { token } => {
                let sub = format!("customer-{}", self.placed.len());
                let body = json!({
                    "lines": [{"sku": "SKU-1", "quantity": 1,
                               "unit_price": {"amount": 1000, "currency": "EUR"}}],
                    "card_token": token,
                });
                let response = orders::handlers::http::handle(
                    &self.orders,
                    &testkit::scopes(),
                    request("POST", "/v1/orders", &sub, Some(body)),
                )
                .await;
                assert_eq!(response.status(), 201);
                let lambda_http::Body::Text(text) = response.body() else {
                    panic!("no body")
                };
                let body: serde_json::Value = serde_json::from_str(text).unwrap();
                let id = OrderId::parse(body["id"].as_str().unwrap()).unwrap();
                self.placed.push((id, sub));
            }
            Step::Cancel { nth } => {
                if self.placed.is_empty() {
                    return;
                }
                let (id, sub) = &self.placed[nth % self.placed.len()];
                let path = format!("/v1/orders/{id}/cancel");
                let response = orders::handlers::http::handle(
                    &self.orders,
                    &testkit::scopes(),
                    request("POST", &path, sub, None),
                )
                .await;
                // 200, or 409 when the order is already cancelled.
                assert!(
                    [200, 409].contains(&response.status().as_u16()),
                    "{:?}",
                    response.body()
                );
            }
            Step::TimeOut => {
                orders::handlers::timeout::expire(&self.orders, Duration::zero(), Utc::now())
                    .await
                    .unwrap();
            }
            Step::Relay { again } => self.relay(*again),
            Step::Deliver {
                queue,
                nth,
                keep,
                fault,
            } => self.deliver(*queue, *nth, *keep, *fault).await,
        }
    }

    fn relay(&mut self, again: bool) {
        let outboxes = [
            self.orders.outbox(),
            self.payments.outbox(),
            self.notify.outbox(),
        ];
        for (service, outbox) in outboxes.iter().enumerate() {
            let from = if again { 0 } else { self.relayed[service] };
            for envelope in &outbox[from..] {
                for queue in routes(&envelope.event_type) {
                    self.queues.entry(*queue).or_default().push(Pending {
                        envelope: envelope.clone(),
                        receive_count: 0,
                    });
                }
            }
            self.relayed[service] = outbox.len();
        }
    }

    async fn deliver(&mut self, queue: Queue, nth: usize, keep: bool, fault: Option<Fault>) {
        let Some(messages) = self.queues.get_mut(&queue).filter(|m| !m.is_empty()) else {
            return;
        };
        let index = nth % messages.len();
        messages[index].receive_count += 1;
        let pending = messages[index].clone();
        let message = Message {
            message_id: uuid::Uuid::new_v4().to_string(),
            receive_count: pending.receive_count,
            event: pending.envelope.decode().unwrap(),
            envelope: pending.envelope,
        };
        self.faults.arm(fault);
        let ok = match queue {
            Queue::Orders => {
                let repository = FaultyOrders(&self.orders, &self.faults);
                orders::handlers::events::handle(&repository, message)
                    .await
                    .is_ok()
            }
            Queue::Payments => {
                let repository = FaultyPayments(&self.payments, &self.faults);
                let provider = Simulator::new(&self.payments, false);
                payments::handlers::events::handle(&repository, &provider, message)
                    .await
                    .is_ok()
            }
            Queue::Notify => notify::handlers::events::handle(&self.notify, message)
                .await
                .is_ok(),
        };
        self.faults.arm(None);
        let Some(messages) = self.queues.get_mut(&queue) else {
            return;
        };
        if ok && !keep {
            messages.remove(index);
        } else if !ok {
            // A failed message is invisible for the visibility timeout while the others are
            // delivered (a standard queue has no order): it goes to the back.
            let failed = messages.remove(index);
            messages.push(failed);
        }
    }

    /// Relays and delivers without faults until every queue is empty.
    async fn drain(&mut self) {
        for _ in 0..2_000 {
            self.relay(false);
            let Some(queue) = self
                .queues
                .iter()
                .find(|(_, messages)| !messages.is_empty())
                .map(|(queue, _)| *queue)
            else {
                return;
            };
            self.deliver(queue, 0, false, None).await;
        }
        panic!("the bus does not drain: {:?}", self.queues);
    }

    async fn check(&self) {
        let notifications = self.notify.notifications();
        for (id, _) in &self.placed {
            let key = id.as_str();
            let order = self.orders.get(id).await.unwrap().unwrap();
            let payment = self.payments.get(id).await.unwrap();
            let status = payment.as_ref().map(|p| p.status);
            let case = format!("order {id}: {:?}, payment {status:?}", order.status);
            assert!(self.payments.charges(key) <= 1, "{case}: authorized twice");
            let count = |about: &str| {
                notifications
                    .iter()
                    .filter(|n| n.order_id == key && n.about == about)
                    .count()
            };
            match order.status {
                OrderStatus::Pending => panic!("{case}: still PENDING after the bus drained"),
                OrderStatus::Confirmed => {
                    assert_eq!(status, Some(PaymentStatus::Captured), "{case}");
                    assert!(self.payments.captured(key), "{case}: not captured");
                    assert_eq!(count("OrderConfirmed"), 1, "{case}");
                    assert_eq!(count("OrderCancelled"), 0, "{case}");
                }
                OrderStatus::Cancelled => {
                    assert!(!self.payments.held(key), "{case}: money held");
                    assert!(!self.payments.captured(key), "{case}: money taken");
                    if self.payments.charges(key) == 1 && status != Some(PaymentStatus::Declined) {
                        assert!(
                            matches!(
                                status,
                                Some(PaymentStatus::Voided | PaymentStatus::Refunded)
                            ),
                            "{case}: a charged, cancelled order must end VOIDED or REFUNDED"
                        );
                    }
                    assert_eq!(count("OrderCancelled"), 1, "{case}");
                    let refunded = usize::from(status == Some(PaymentStatus::Refunded));
                    assert_eq!(count("PaymentRefunded"), refunded, "{case}");
                }
            }
        }
        // Exactly one notification per terminal event: none of them twice.
        let mut seen = HashMap::new();
        for n in &notifications {
            *seen
                .entry((n.order_id.clone(), n.about.clone()))
                .or_insert(0) += 1;
        }
        assert!(seen.values().all(|&c| c == 1), "{seen:?}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_saga_keeps_its_invariants_under_any_interleaving_and_injected_failures(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        runtime().block_on(async {
            let mut world = World::default();
            for step in &steps {
                world.run(step).await;
            }
            world.drain().await;
            world.check().await;
        });
    }
}
