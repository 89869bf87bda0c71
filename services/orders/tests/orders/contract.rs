//! The `OrderRepository` contract, run against both adapters (memory and DynamoDB on moto),
//! so the in-memory twin every handler test uses cannot drift from the real store.

use chrono::{Duration, Utc};
use kit::{
    events::Envelope,
    idempotency::Key,
    rate_limit::{Decision, RateLimit},
};
use orders::{
    adapters::{dynamodb::DynamoOrders, memory::MemoryOrders},
    domain::{CustomerId, Order, OrderId, PlaceOrder},
    ports::{IdempotentResponse, Limits, OrderRepository, RepositoryError},
};
use serde_json::json;

use crate::helpers::order_body;

fn order(minutes_ago: i64) -> (Order, Envelope) {
    let request: PlaceOrder = serde_json::from_value(order_body("tok_approve")).unwrap();
    let at = Utc::now() - Duration::minutes(minutes_ago);
    let (order, event) = Order::place(
        OrderId::generate(),
        CustomerId::new("c1"),
        request.validate().unwrap(),
        at,
    );
    let envelope = Envelope::new("shop.orders", &event, "c", None, at).unwrap();
    (order, envelope)
}

async fn a_reused_idempotency_key_is_refused_and_writes_nothing<R: OrderRepository>(store: &R) {
    let key = Key::for_caller("orders-http", "c1", &uuid::Uuid::now_v7().to_string()).unwrap();
    let stored = IdempotentResponse {
        key: key.clone(),
        fingerprint: "f".into(),
        response: json!({"status": 201}),
    };
    let (first, event) = order(0);
    store.insert(&first, &[event], Some(&stored)).await.unwrap();
    assert_eq!(store.get(&first.id).await.unwrap(), Some(first.clone()));
    let record = store.idempotency_record(&key).await.unwrap().unwrap();
    assert_eq!(record.fingerprint, "f");

    let (second, event) = order(0);
    let result = store.insert(&second, &[event], Some(&stored)).await;
    assert!(
        matches!(result, Err(RepositoryError::IdempotencyKeyTaken)),
        "{result:?}"
    );
    assert_eq!(store.get(&second.id).await.unwrap(), None);
}

async fn an_update_needs_the_version_it_read<R: OrderRepository>(store: &R) {
    let (placed, event) = order(0);
    store.insert(&placed, &[event], None).await.unwrap();
    let mut confirmed = placed.clone();
    confirmed.confirm(Utc::now()).unwrap();
    store.update(&confirmed, 1, &[], None).await.unwrap();
    let mut stale = placed.clone();
    stale.cancel(Utc::now()).unwrap();
    let result = store.update(&stale, 1, &[], None).await;
    assert!(
        matches!(result, Err(RepositoryError::VersionConflict)),
        "{result:?}"
    );
    assert_eq!(store.get(&placed.id).await.unwrap(), Some(confirmed));
}

async fn an_event_is_applied_once_and_a_duplicate_writes_nothing<R: OrderRepository>(store: &R) {
    let (placed, event) = order(0);
    store.insert(&placed, &[event], None).await.unwrap();
    let event_id = uuid::Uuid::now_v7().to_string();
    let mut confirmed = placed.clone();
    confirmed.confirm(Utc::now()).unwrap();
    store
        .update(&confirmed, 1, &[], Some(&event_id))
        .await
        .unwrap();
    assert!(store.is_processed(&event_id).await.unwrap());
    let mut cancelled = confirmed.clone();
    cancelled.cancel(Utc::now()).unwrap();
    let result = store.update(&cancelled, 2, &[], Some(&event_id)).await;
    assert!(
        matches!(result, Err(RepositoryError::AlreadyProcessed)),
        "{result:?}"
    );
    assert_eq!(store.get(&placed.id).await.unwrap(), Some(confirmed));
}

async fn only_pending_orders_past_the_cutoff_are_due_oldest_first<R: OrderRepository>(store: &R) {
    let mut due = Vec::new();
    for minutes_ago in [30, 20] {
        let (placed, event) = order(minutes_ago);
        store.insert(&placed, &[event], None).await.unwrap();
        due.push(placed.id.clone());
    }
    let (fresh, event) = order(1);
    store.insert(&fresh, &[event], None).await.unwrap();
    let (left, event) = order(25);
    store.insert(&left, &[event], None).await.unwrap();
    let mut confirmed = left.clone();
    confirmed.confirm(Utc::now()).unwrap();
    store.update(&confirmed, 1, &[], None).await.unwrap();

    let cutoff = Utc::now() - Duration::minutes(15);
    let listed = store.pending_before(cutoff, 10).await.unwrap();
    assert_eq!(listed, due);
    assert_eq!(store.pending_before(cutoff, 1).await.unwrap(), due[..1]);
}

/// Small limits, so the cases reach them: 5 open orders, 3 writes a minute.
const LIMITS: Limits = Limits {
    writes: RateLimit {
        limit: 3,
        window: std::time::Duration::from_secs(60),
    },
    max_open_orders: 5,
};

async fn a_customers_open_orders_are_capped_and_closing_one_frees_a_place<R: OrderRepository>(
    store: &R,
) {
    let mut placed = Vec::new();
    for _ in 0..5 {
        let (order, event) = order(0);
        store.insert(&order, &[event], None).await.unwrap();
        placed.push(order);
    }
    let (refused, event) = order(0);
    let result = store.insert(&refused, &[event], None).await;
    assert!(
        matches!(result, Err(RepositoryError::TooManyOpenOrders { max: 5 })),
        "{result:?}"
    );
    assert_eq!(
        store.get(&refused.id).await.unwrap(),
        None,
        "nothing stored"
    );

    // A confirmed order is no longer open; cancelling it afterwards frees nothing twice.
    let mut confirmed = placed[0].clone();
    confirmed.confirm(Utc::now()).unwrap();
    store.update(&confirmed, 1, &[], None).await.unwrap();
    let mut cancelled = confirmed.clone();
    cancelled.cancel(Utc::now()).unwrap();
    store.update(&cancelled, 2, &[], None).await.unwrap();
    let (sixth, event) = order(0);
    store.insert(&sixth, &[event], None).await.unwrap();
    let (seventh, event) = order(0);
    let result = store.insert(&seventh, &[event], None).await;
    assert!(
        matches!(result, Err(RepositoryError::TooManyOpenOrders { .. })),
        "one place was freed, once: {result:?}"
    );
    // Another customer has places of its own.
    let (mut other, event) = order(0);
    other.customer_id = CustomerId::new("c2");
    store.insert(&other, &[event], None).await.unwrap();
}

async fn a_customers_writes_are_counted_per_window<R: OrderRepository>(store: &R) {
    let customer = CustomerId::new(format!("c-{}", uuid::Uuid::now_v7()));
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    for second in [0, 10, 20] {
        let at = start + Duration::seconds(second);
        assert_eq!(
            store.count_write(&customer, at).await.unwrap(),
            Decision::Allowed
        );
    }
    let at = start + Duration::seconds(45);
    assert_eq!(
        store.count_write(&customer, at).await.unwrap(),
        Decision::Limited { retry_after: 15 }
    );
    let stranger = CustomerId::new("someone-else");
    assert_eq!(
        store.count_write(&stranger, at).await.unwrap(),
        Decision::Allowed
    );
    let next_window = start + Duration::seconds(60);
    assert_eq!(
        store.count_write(&customer, next_window).await.unwrap(),
        Decision::Allowed
    );
}

async fn dynamo() -> DynamoOrders {
    let (client, table) = crate::dynamodb::table().await;
    DynamoOrders::new(client, &table).with_limits(LIMITS)
}

testkit::contract!(
    memory: MemoryOrders::default().with_limits(LIMITS),
    dynamodb: dynamo(),
    cases: [
        a_reused_idempotency_key_is_refused_and_writes_nothing,
        an_update_needs_the_version_it_read,
        an_event_is_applied_once_and_a_duplicate_writes_nothing,
        only_pending_orders_past_the_cutoff_are_due_oldest_first,
        a_customers_open_orders_are_capped_and_closing_one_frees_a_place,
        a_customers_writes_are_counted_per_window,
    ]
);
