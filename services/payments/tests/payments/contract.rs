//! The `PaymentRepository` contract, run against both adapters (memory and DynamoDB on
//! moto), so the in-memory twin every handler test uses cannot drift from the real store.

use chrono::Utc;
use kit::{
    events::{Envelope, Event, OrderPlaced},
    ids::OrderId,
};
use payments::{
    adapters::{dynamodb::DynamoPayments, memory::MemoryPayments},
    domain::{ChargeOutcome, Payment, Status},
    ports::{PaymentRepository, RepositoryError},
};

use crate::helpers::{eur, placed};

fn authorizing(order: &OrderId) -> Payment {
    let Event::OrderPlaced(placed) = placed(order, "tok_approve") else {
        unreachable!()
    };
    let placed: OrderPlaced = placed;
    Payment::authorizing(order.clone(), &placed, Utc::now())
}

fn event(payment: &Payment) -> Envelope {
    let event = Event::PaymentRefunded(kit::events::PaymentRefunded {
        order_id: payment.order_id.to_string(),
        payment_id: payment.payment_id.clone(),
        customer_id: payment.customer_id.as_str().to_owned(),
        amount: eur(2500),
        refunded_at: Utc::now(),
    });
    Envelope::new("shop.payments", &event, "c", None, Utc::now()).unwrap()
}

async fn a_new_payment_is_stored_once<R: PaymentRepository>(store: &R) {
    let order = OrderId::generate();
    let payment = authorizing(&order);
    store.insert(&payment, &[], None).await.unwrap();
    assert_eq!(store.get(&order).await.unwrap(), Some(payment.clone()));
    let again = store.insert(&payment, &[], None).await;
    assert!(
        matches!(again, Err(RepositoryError::PaymentExists)),
        "{again:?}"
    );
}

async fn an_update_needs_the_version_it_read<R: PaymentRepository>(store: &R) {
    let order = OrderId::generate();
    let payment = authorizing(&order);
    store.insert(&payment, &[], None).await.unwrap();
    let mut settled = payment.clone();
    let outcome = ChargeOutcome::Authorized {
        reference: "r".into(),
    };
    settled.settle(outcome, Utc::now()).unwrap();
    store.update(&settled, 1, &[], None).await.unwrap();
    assert_eq!(
        store.get(&order).await.unwrap().map(|p| p.status),
        Some(Status::Authorized)
    );
    let mut stale = settled.clone();
    stale.void(Utc::now()).unwrap();
    let result = store.update(&stale, 1, &[], None).await;
    assert!(
        matches!(result, Err(RepositoryError::VersionConflict)),
        "{result:?}"
    );
    assert_eq!(store.get(&order).await.unwrap(), Some(settled));
}

async fn an_event_is_applied_once_and_a_duplicate_writes_nothing<R: PaymentRepository>(store: &R) {
    let order = OrderId::generate();
    let payment = authorizing(&order);
    let event_id = uuid::Uuid::now_v7().to_string();
    assert!(!store.is_processed(&event_id).await.unwrap());
    store
        .insert(&payment, &[event(&payment)], Some(&event_id))
        .await
        .unwrap();
    assert!(store.is_processed(&event_id).await.unwrap());
    let mut changed = payment.clone();
    changed.void(Utc::now()).unwrap();
    let result = store
        .update(&changed, 1, &[event(&payment)], Some(&event_id))
        .await;
    assert!(
        matches!(result, Err(RepositoryError::AlreadyProcessed)),
        "{result:?}"
    );
    assert_eq!(store.get(&order).await.unwrap(), Some(payment));
}

async fn dynamo() -> DynamoPayments {
    let config = testkit::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = testkit::unique("payments-contract");
    testkit::create_service_table(&client, &name).await;
    DynamoPayments::new(client, &name)
}

testkit::contract!(
    memory: MemoryPayments::default(),
    dynamodb: dynamo(),
    cases: [
        a_new_payment_is_stored_once,
        an_update_needs_the_version_it_read,
        an_event_is_applied_once_and_a_duplicate_writes_nothing,
    ]
);
