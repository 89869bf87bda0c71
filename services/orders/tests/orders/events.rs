//! The orders events handler against the in-memory repository.

use chrono::Utc;
use kit::{
    events::{Envelope, Event, PaymentAuthorized, PaymentDeclined, PaymentRefunded},
    money::{Currency, Money},
    sqs::Message,
};
use orders::{
    adapters::memory::MemoryOrders,
    domain::{OrderId, Status},
    handlers::events::{ConsumerError, handle},
    ports::OrderRepository,
};

use crate::helpers::{assert_matches_schema, place};

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
}

pub fn authorized(order_id: &str) -> Event {
    Event::PaymentAuthorized(PaymentAuthorized {
        order_id: order_id.into(),
        payment_id: "pay-1".into(),
        customer_id: "customer-1".into(),
        amount: eur(2999),
        authorized_at: Utc::now(),
    })
}

pub fn declined(order_id: &str) -> Event {
    Event::PaymentDeclined(PaymentDeclined {
        order_id: order_id.into(),
        payment_id: "pay-1".into(),
        customer_id: "customer-1".into(),
        amount: eur(2999),
        reason: "insufficient_funds".into(),
        declined_at: Utc::now(),
    })
}

pub fn message(event: &Event) -> Message {
    let envelope = Envelope::new(
        "shop.payments",
        event,
        "corr-saga",
        Some("cause"),
        Utc::now(),
    )
    .unwrap();
    Message {
        message_id: uuid::Uuid::new_v4().to_string(),
        receive_count: 1,
        envelope,
        event: event.clone(),
    }
}

async fn status(orders: &MemoryOrders, id: &str) -> Status {
    orders
        .get(&OrderId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
}

#[tokio::test]
async fn an_authorized_payment_confirms_the_order_and_emits_order_confirmed() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let message = message(&authorized(&id));
    handle(&orders, message.clone()).await.unwrap();
    assert_eq!(status(&orders, &id).await, Status::Confirmed);
    let confirmed = orders.outbox().pop().unwrap();
    assert_eq!(confirmed.event_type, "OrderConfirmed");
    assert_eq!(confirmed.correlation_id, "corr-saga");
    assert_eq!(
        confirmed.causation_id.as_deref(),
        Some(message.envelope.id.to_string().as_str())
    );
    assert_matches_schema(&confirmed);
}

#[tokio::test]
async fn a_declined_payment_cancels_the_order_with_the_reason() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    handle(&orders, message(&declined(&id))).await.unwrap();
    let order = orders
        .get(&OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status, Status::Cancelled);
    assert_eq!(
        order.cancellation_detail.as_deref(),
        Some("insufficient_funds")
    );
    let cancelled = orders.outbox().pop().unwrap();
    assert_eq!(cancelled.event_type, "OrderCancelled");
    assert_eq!(cancelled.data["reason"], "payment_declined");
    assert_matches_schema(&cancelled);
}

#[tokio::test]
async fn a_duplicate_delivery_changes_nothing_the_second_time() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let message = message(&authorized(&id));
    handle(&orders, message.clone()).await.unwrap();
    handle(&orders, message).await.unwrap();
    assert_eq!(
        orders.outbox().len(),
        2,
        "OrderPlaced and one OrderConfirmed"
    );
    let order = orders
        .get(&OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.version, 2, "one transition");
}

#[tokio::test]
async fn an_illegal_transition_is_acknowledged_without_change() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    handle(&orders, message(&declined(&id))).await.unwrap();
    // A late authorization for a cancelled order: logged, acknowledged, not retried.
    handle(&orders, message(&authorized(&id))).await.unwrap();
    assert_eq!(status(&orders, &id).await, Status::Cancelled);
    assert_eq!(orders.outbox().len(), 2);
}

#[tokio::test]
async fn an_event_for_an_unknown_order_fails_so_it_is_retried_then_dead_lettered() {
    let orders = MemoryOrders::default();
    let missing = OrderId::generate();
    let result = handle(&orders, message(&authorized(missing.as_str()))).await;
    assert!(matches!(result, Err(ConsumerError::UnknownOrder(_))));
}

#[tokio::test]
async fn events_not_meant_for_orders_are_acknowledged() {
    let orders = MemoryOrders::default();
    let refunded = Event::PaymentRefunded(PaymentRefunded {
        order_id: "x".into(),
        payment_id: "p".into(),
        customer_id: "c".into(),
        amount: eur(1),
        refunded_at: Utc::now(),
    });
    handle(&orders, message(&refunded)).await.unwrap();
    assert!(orders.outbox().is_empty());
}

#[tokio::test]
async fn a_payment_declined_for_a_confirmed_order_leaves_it_confirmed() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    handle(&orders, message(&authorized(&id))).await.unwrap();
    // Only a PENDING order can be declined: a confirmed order's payment is not in question.
    let _ = handle(&orders, message(&declined(&id))).await;
    assert_eq!(status(&orders, &id).await, Status::Confirmed);
    assert_eq!(
        orders.outbox().len(),
        2,
        "OrderPlaced and OrderConfirmed only"
    );
}

#[tokio::test]
async fn a_payment_event_that_does_not_match_the_order_changes_nothing() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let mut wrong_amount = authorized(&id);
    if let Event::PaymentAuthorized(paid) = &mut wrong_amount {
        paid.amount = eur(1);
    }
    let mut wrong_customer = authorized(&id);
    if let Event::PaymentAuthorized(paid) = &mut wrong_customer {
        paid.customer_id = "mallory".into();
    }
    for forged in [wrong_amount, wrong_customer] {
        let result = handle(&orders, message(&forged)).await;
        assert!(result.is_err(), "a mismatched event goes to the DLQ");
        assert_eq!(status(&orders, &id).await, Status::Pending);
    }
    assert_eq!(orders.outbox().len(), 1, "OrderPlaced only");
}
