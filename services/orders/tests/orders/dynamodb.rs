//! The DynamoDB adapter against moto with the real SDK client: conditional writes, version
//! conflicts, processed markers, idempotency records, pagination, the outbox transaction.

use chrono::Utc;
use kit::{
    events::{Envelope, Event},
    idempotency::Key,
};
use orders::{
    adapters::dynamodb::DynamoOrders,
    domain::{CustomerId, Order, OrderId, PlaceOrder, Status},
    ports::{IdempotentResponse, OrderRepository, RepositoryError},
};
use serde_json::json;

use crate::helpers::order_body;

/// The orders table's sparse index of PENDING orders, as in services/orders/template.yaml.
pub const PENDING: testkit::Index = testkit::Index {
    name: orders::adapters::dynamodb::PENDING_INDEX,
    pk: orders::adapters::dynamodb::PENDING_PK,
    sk: orders::adapters::dynamodb::PENDING_SK,
    keys_only: true,
};

pub async fn table() -> (aws_sdk_dynamodb::Client, String) {
    let config = testkit::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = testkit::unique("orders");
    testkit::create_service_table_with(&client, &table, &[PENDING]).await;
    (client, table)
}

fn new_order(customer: &str) -> (Order, Envelope) {
    let request: PlaceOrder = serde_json::from_value(order_body("tok_approve")).unwrap();
    let (order, event) = Order::place(
        OrderId::generate(),
        CustomerId::new(customer),
        request.validate().unwrap(),
        Utc::now(),
    );
    let envelope = Envelope::new("shop.orders", &event, "corr", None, Utc::now()).unwrap();
    (order, envelope)
}

#[tokio::test]
async fn an_inserted_order_and_its_outbox_record_commit_together() {
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client.clone(), &table);
    let (order, envelope) = new_order("c1");
    orders
        .insert(&order, std::slice::from_ref(&envelope), None)
        .await
        .unwrap();
    assert_eq!(orders.get(&order.id).await.unwrap(), Some(order.clone()));
    let outbox = client
        .get_item()
        .table_name(&table)
        .key("pk", kit::dynamo::s(format!("OUTBOX#{}", envelope.id)))
        .key("sk", kit::dynamo::s("OUTBOX"))
        .send()
        .await
        .unwrap();
    let item = outbox.item.expect("outbox record written");
    assert_eq!(item["detail_type"].as_s().unwrap(), "OrderPlaced");
    // Inserting the same order again fails its condition and writes nothing.
    assert!(orders.insert(&order, &[], None).await.is_err());
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_writes_nothing() {
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let (mut order, envelope) = new_order("c1");
    orders.insert(&order, &[envelope], None).await.unwrap();
    let event = order.confirm(Utc::now()).unwrap();
    let confirmed = Envelope::new("shop.orders", &event, "corr", None, Utc::now()).unwrap();
    let stale = orders
        .update(&order, 7, std::slice::from_ref(&confirmed), None)
        .await;
    assert!(matches!(stale, Err(RepositoryError::VersionConflict)));
    assert_eq!(
        orders.get(&order.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    orders.update(&order, 1, &[confirmed], None).await.unwrap();
    assert_eq!(
        orders.get(&order.id).await.unwrap().unwrap().status,
        Status::Confirmed
    );
}

#[tokio::test]
async fn an_event_applied_once_is_refused_the_second_time() {
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let (mut order, envelope) = new_order("c1");
    orders.insert(&order, &[envelope], None).await.unwrap();
    order.confirm(Utc::now()).unwrap();
    assert!(!orders.is_processed("event-1").await.unwrap());
    orders
        .update(&order, 1, &[], Some("event-1"))
        .await
        .unwrap();
    assert!(orders.is_processed("event-1").await.unwrap());
    let mut again = order.clone();
    again.version += 1;
    let second = orders
        .update(&again, order.version, &[], Some("event-1"))
        .await;
    assert!(matches!(second, Err(RepositoryError::AlreadyProcessed)));
    assert_eq!(
        orders.get(&order.id).await.unwrap().unwrap().version,
        order.version
    );
}

#[tokio::test]
async fn an_idempotency_key_is_stored_with_the_order_and_taken_only_once() {
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let key = Key::for_caller("orders-http", "c1", "key-1").unwrap();
    let stored = IdempotentResponse {
        key: key.clone(),
        fingerprint: "f1".into(),
        response: json!({"status": 201, "body": {"id": "x"}}),
    };
    let (first, envelope) = new_order("c1");
    orders
        .insert(&first, &[envelope], Some(&stored))
        .await
        .unwrap();
    let record = orders.idempotency_record(&key).await.unwrap().unwrap();
    assert_eq!(record.fingerprint, "f1");
    assert_eq!(record.response, Some(stored.response.clone()));
    let (second, envelope) = new_order("c1");
    let taken = orders.insert(&second, &[envelope], Some(&stored)).await;
    assert!(matches!(taken, Err(RepositoryError::IdempotencyKeyTaken)));
    assert_eq!(
        orders.get(&second.id).await.unwrap(),
        None,
        "the losing order is not stored"
    );
}

#[tokio::test]
async fn a_customers_orders_are_listed_newest_first_across_pages() {
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let mut mine = Vec::new();
    for _ in 0..5 {
        let (order, envelope) = new_order("c1");
        orders.insert(&order, &[envelope], None).await.unwrap();
        mine.push(order.id);
    }
    let (other, envelope) = new_order("c2");
    orders.insert(&other, &[envelope], None).await.unwrap();
    mine.reverse();

    let customer = CustomerId::new("c1");
    let mut seen: Vec<OrderId> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..5 {
        let page = orders
            .list_for_customer(&customer, 2, after.as_deref())
            .await
            .unwrap();
        seen.extend(page.orders.into_iter().map(|o| o.id));
        match page.next {
            Some(cursor) => after = kit::page::decode_cursor(&cursor),
            None => break,
        }
    }
    assert_eq!(seen, mine);
}

#[tokio::test]
async fn events_are_plain_envelopes_in_the_outbox() {
    // The stored envelope decodes back to the typed event that was written.
    let (_order, envelope) = new_order("c1");
    assert!(matches!(envelope.decode().unwrap(), Event::OrderPlaced(_)));
}

#[tokio::test]
async fn every_payment_event_delivered_twice_moves_its_order_once() {
    use crate::events::{authorized, declined, message};
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    for (event, expected) in [
        (authorized as fn(&str) -> Event, Status::Confirmed),
        (declined, Status::Cancelled),
    ] {
        let (order, envelope) = new_order("customer-1");
        orders.insert(&order, &[envelope], None).await.unwrap();
        let delivery = message(&event(order.id.as_str()));
        let mut redelivery = delivery.clone();
        redelivery.receive_count = 2;
        orders::handlers::events::handle(&orders, delivery)
            .await
            .unwrap();
        orders::handlers::events::handle(&orders, redelivery)
            .await
            .unwrap();
        let stored = orders.get(&order.id).await.unwrap().unwrap();
        assert_eq!(stored.status, expected);
        assert_eq!(stored.version, 2, "one transition for {expected:?}");
    }
}
