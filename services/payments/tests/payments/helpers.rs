//! Messages as the payments queue delivers them, and the committed event contracts.

use std::path::PathBuf;

use chrono::Utc;
use kit::{
    events::{
        CancellationReason, Envelope, Event, OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced,
    },
    ids::OrderId,
    money::{Currency, Money},
    sqs::Message,
};
use payments::{
    adapters::{memory::MemoryPayments, simulator::Simulator},
    handlers::events::{self, ConsumerError},
};

pub(crate) const CUSTOMER: &str = "customer-1";

pub(crate) fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
}

/// A message of the payments queue carrying `event` from orders, on delivery `attempt`.
pub(crate) fn message(event: &Event, attempt: u32) -> Message {
    let envelope =
        Envelope::new("shop.orders", event, "corr-1", Some("req-1"), Utc::now()).unwrap();
    Message {
        message_id: uuid::Uuid::new_v4().to_string(),
        receive_count: attempt,
        envelope,
        event: event.clone(),
    }
}

/// The same message delivered again (same envelope, later attempt).
pub(crate) fn redelivered(message: &Message) -> Message {
    Message {
        receive_count: message.receive_count + 1,
        ..message.clone()
    }
}

pub(crate) fn placed(order: &OrderId, card_token: &str) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id: order.to_string(),
        customer_id: CUSTOMER.into(),
        lines: vec![OrderLine {
            sku: "SKU-1".into(),
            quantity: 2,
            unit_price: eur(1250),
        }],
        total: eur(2500),
        card_token: card_token.into(),
        placed_at: Utc::now(),
    })
}

pub(crate) fn confirmed(order: &OrderId) -> Event {
    Event::OrderConfirmed(OrderConfirmed {
        order_id: order.to_string(),
        customer_id: CUSTOMER.into(),
        total: eur(2500),
        confirmed_at: Utc::now(),
    })
}

pub(crate) fn cancelled(order: &OrderId) -> Event {
    Event::OrderCancelled(OrderCancelled {
        order_id: order.to_string(),
        customer_id: CUSTOMER.into(),
        total: eur(2500),
        reason: CancellationReason::CustomerRequested,
        detail: None,
        cancelled_at: Utc::now(),
    })
}

/// The events handler on an in-memory store, with the simulator on the same store's ledger.
pub(crate) struct App {
    pub(crate) store: MemoryPayments,
    pub(crate) recovered: bool,
}

pub(crate) fn app() -> App {
    kit::telemetry::init_for_tests();
    App {
        store: MemoryPayments::default(),
        recovered: false,
    }
}

impl App {
    pub(crate) async fn deliver(&self, message: Message) -> Result<(), ConsumerError> {
        let provider = Simulator::new(&self.store, self.recovered);
        events::handle(&self.store, &provider, message).await
    }

    /// Every event payments wrote to its outbox, checked against the committed contracts.
    pub(crate) fn published(&self) -> Vec<Envelope> {
        let outbox = self.store.outbox();
        outbox.iter().for_each(assert_matches_contract);
        outbox
    }
}

fn schema(file: &str) -> jsonschema::Validator {
    let path: PathBuf = testkit::repo_root().join("shared/kit/schemas").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Fails unless `envelope` and its payload validate against the committed JSON Schemas, and it
/// comes from payments.
pub(crate) fn assert_matches_contract(envelope: &Envelope) {
    assert_eq!(envelope.source, "shop.payments");
    let json = serde_json::to_value(envelope).unwrap();
    let errors: Vec<String> = schema("envelope.json")
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "envelope breaks its schema: {errors:?}");
    let file = format!("{}.v{}.json", envelope.event_type, envelope.version);
    let errors: Vec<String> = schema(&file)
        .iter_errors(&envelope.data)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:?}");
}
