//! The saga timeout on the in-memory and the DynamoDB repository: only orders PENDING past the
//! timeout are cancelled, with reason `payment_timeout`, in their own saga.

use chrono::{Duration, Utc};
use kit::events::{CancellationReason, Envelope};
use orders::{
    adapters::{dynamodb::DynamoOrders, memory::MemoryOrders},
    domain::{CustomerId, Order, OrderId, PlaceOrder, Status},
    handlers::timeout::expire,
    ports::OrderRepository,
};

use crate::helpers::order_body;

/// An order placed `minutes_ago`, stored with its OrderPlaced event.
async fn placed<R: OrderRepository>(orders: &R, minutes_ago: i64) -> Order {
    let request: PlaceOrder = serde_json::from_value(order_body("tok_unavailable")).unwrap();
    let at = Utc::now() - Duration::minutes(minutes_ago);
    let (mut order, event) = Order::place(
        OrderId::generate(),
        CustomerId::new("c1"),
        request.validate().unwrap(),
        at,
    );
    order.correlation_id = Some(format!("saga-{}", order.id));
    let envelope = Envelope::new("shop.orders", &event, "c", None, at).unwrap();
    orders.insert(&order, &[envelope], None).await.unwrap();
    order
}

async fn reload<R: OrderRepository>(orders: &R, order: &Order) -> Order {
    orders.get(&order.id).await.unwrap().unwrap()
}

/// The same scenario on any repository: returns the ids it cancelled.
async fn only_stale_pending_orders_are_cancelled<R: OrderRepository>(orders: &R) -> Vec<OrderId> {
    let stale = placed(orders, 20).await;
    let fresh = placed(orders, 1).await;
    let mut confirmed = placed(orders, 30).await;
    let expected = confirmed.version;
    confirmed.confirm(Utc::now()).unwrap();
    orders
        .update(&confirmed, expected, &[], None)
        .await
        .unwrap();

    let first = expire(orders, Duration::minutes(15), Utc::now())
        .await
        .unwrap();
    assert_eq!(first.cancelled, 1, "{first:?}");
    let again = expire(orders, Duration::minutes(15), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.cancelled, 0, "a second run finds nothing to do");

    let stale = reload(orders, &stale).await;
    assert_eq!(stale.status, Status::Cancelled);
    assert_eq!(
        stale.cancellation_reason,
        Some(CancellationReason::PaymentTimeout)
    );
    assert_eq!(reload(orders, &fresh).await.status, Status::Pending);
    assert_eq!(reload(orders, &confirmed).await.status, Status::Confirmed);
    vec![stale.id]
}

#[tokio::test]
async fn an_order_pending_past_the_timeout_is_cancelled_and_publishes_order_cancelled_in_its_saga()
{
    let orders = MemoryOrders::default();
    let cancelled = only_stale_pending_orders_are_cancelled(&orders).await;
    let event = orders.outbox().pop().unwrap();
    assert_eq!(event.event_type, "OrderCancelled");
    assert_eq!(event.data["reason"], "payment_timeout");
    assert_eq!(event.data["order_id"], cancelled[0].as_str());
    assert_eq!(event.correlation_id, format!("saga-{}", cancelled[0]));
    crate::helpers::assert_matches_schema(&event);
}

#[tokio::test]
async fn the_pending_index_in_dynamodb_finds_exactly_the_stale_pending_orders() {
    let (client, table) = crate::dynamodb::table().await;
    let orders = DynamoOrders::new(client, &table);
    only_stale_pending_orders_are_cancelled(&orders).await;
}
