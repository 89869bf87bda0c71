//! The DynamoDB adapter against moto: the payment, its outbox record and the processed marker
//! commit together; the ledger keeps one charge per order; a duplicate writes nothing.

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use kit::ids::OrderId;
use payments::{
    adapters::{dynamodb::DynamoPayments, simulator::Simulator},
    domain::Status,
    handlers::events,
    ports::{ChargeLedger, Operation, PaymentRepository, RepositoryError},
};

use crate::helpers::{cancelled, confirmed, message, placed, redelivered};

struct Table {
    client: Client,
    name: String,
    payments: DynamoPayments,
}

async fn table() -> Table {
    kit::telemetry::init_for_tests();
    let config = testkit::sdk_config().await;
    let client = Client::new(&config);
    let name = testkit::unique("payments");
    testkit::create_service_table(&client, &name).await;
    Table {
        payments: DynamoPayments::new(client.clone(), &name),
        client,
        name,
    }
}

impl Table {
    /// The `pk`s of every item whose `pk` starts with `prefix`.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let output = self
            .client
            .scan()
            .table_name(&self.name)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
            .send()
            .await
            .unwrap();
        output
            .items()
            .iter()
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect()
    }

    async fn deliver(&self, message: kit::sqs::Message) -> Result<(), events::ConsumerError> {
        let provider = Simulator::new(&self.payments, false);
        events::handle(&self.payments, &provider, message).await
    }
}

#[tokio::test]
async fn a_charge_commits_the_payment_its_outbox_record_and_the_marker_and_a_duplicate_adds_nothing()
 {
    let table = table().await;
    let order = OrderId::generate();
    let incoming = message(&placed(&order, "tok_approve"), 1);
    table.deliver(incoming.clone()).await.unwrap();
    table.deliver(redelivered(&incoming)).await.unwrap();
    table
        .deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();

    let payment = table.payments.get(&order).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Authorized);
    assert_eq!(table.keys("PAYMENT#").await, [format!("PAYMENT#{order}")]);
    assert_eq!(table.keys("CHARGE#").await, [format!("CHARGE#{order}")]);
    assert_eq!(table.keys("OUTBOX#").await.len(), 1);
    assert_eq!(
        table.keys("IDEMPOTENCY#payments-events#").await,
        [format!(
            "IDEMPOTENCY#payments-events#{}",
            incoming.envelope.id
        )]
    );
    assert!(
        table
            .payments
            .is_processed(&incoming.envelope.id.to_string())
            .await
            .unwrap()
    );

    let confirm = message(&confirmed(&order), 1);
    table.deliver(confirm.clone()).await.unwrap();
    table.deliver(redelivered(&confirm)).await.unwrap();
    let cancel = message(&cancelled(&order), 1);
    table.deliver(cancel.clone()).await.unwrap();
    table.deliver(redelivered(&cancel)).await.unwrap();
    let payment = table.payments.get(&order).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Refunded);
    assert_eq!(
        payment.version, 4,
        "AUTHORIZING, AUTHORIZED, one capture and one refund for twice-delivered events"
    );
    assert_eq!(table.keys("OUTBOX#").await.len(), 2);
    let mut ledger = table.keys("CHARGE#").await;
    ledger.dedup();
    assert_eq!(ledger, [format!("CHARGE#{order}")]);
    for operation in [Operation::Charge, Operation::Capture, Operation::Refund] {
        assert!(
            table
                .payments
                .find(operation, order.as_str())
                .await
                .unwrap()
                .is_some(),
            "{operation:?}"
        );
    }
}

#[tokio::test]
async fn a_write_whose_event_was_already_processed_commits_nothing() {
    let table = table().await;
    let first = OrderId::generate();
    let incoming = message(&placed(&first, "tok_approve"), 1);
    table.deliver(incoming.clone()).await.unwrap();

    // Another payment written under the same event id: the marker's condition fails.
    let second = OrderId::generate();
    let mut payment = table.payments.get(&first).await.unwrap().unwrap();
    payment.order_id = second.clone();
    let result = table
        .payments
        .insert(&payment, &[], Some(&incoming.envelope.id.to_string()))
        .await;
    assert!(
        matches!(result, Err(RepositoryError::AlreadyProcessed)),
        "{result:?}"
    );
    assert_eq!(table.payments.get(&second).await.unwrap(), None);

    // And a second payment for the same order fails on the payment itself.
    let again = table.payments.get(&first).await.unwrap().unwrap();
    let result = table
        .payments
        .insert(&again, &[], Some("another-event"))
        .await;
    assert!(
        matches!(result, Err(RepositoryError::PaymentExists)),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_ledger_keeps_the_first_entry_per_order_and_operation() {
    let table = table().await;
    let order = OrderId::generate();
    let provider = Simulator::new(&table.payments, false);
    let declined = message(&placed(&order, "tok_decline_card_lost"), 1);
    events::handle(&table.payments, &provider, declined)
        .await
        .unwrap();
    let entry = table
        .payments
        .find(Operation::Charge, order.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.decline_reason.as_deref(), Some("card_lost"));

    let mut other = entry.clone();
    other.decline_reason = None;
    other.reference = "sim_other".into();
    let stored = table.payments.record(&other).await.unwrap();
    assert_eq!(stored, entry, "the first entry wins");
    assert_eq!(table.keys("CHARGE#").await.len(), 1);
}
