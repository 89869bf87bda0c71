//! Payments in DynamoDB (keys in docs/architecture.md): `PAYMENT#<order id>` / `PAYMENT`
//! items with a `version` for optimistic concurrency and `gsi1pk` = `CUSTOMER#<sub>`; the
//! simulator's ledger as `CHARGE#<order id>` / `CHARGE` | `REFUND` items; outbox and
//! processed-event items written in the same `TransactWriteItems` as the payment.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client, error::SdkError, operation::put_item::PutItemError, types::AttributeValue,
};
use kit::telemetry::Step as _;
use kit::{
    dynamo::{self, GSI1_PK, GSI1_SK, PK, SK, Transaction, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
};

use super::write_error;
use crate::{
    domain::{OrderId, Payment},
    ports::{ChargeLedger, LedgerEntry, Operation, PaymentRepository, RepositoryError},
};

/// Scope of the processed-event markers of the events function.
pub const PROCESSED_SCOPE: &str = "payments-events";
/// Sort key of payment items.
const PAYMENT_SK: &str = "PAYMENT";

/// Payments (and the simulator's ledger) in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoPayments {
    client: Client,
    table: String,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(error))
}

fn payment_pk(order_id: &OrderId) -> AttributeValue {
    s(format!("PAYMENT#{order_id}"))
}

fn ledger_key(operation: Operation, key: &str) -> [(&'static str, AttributeValue); 2] {
    [
        (PK, s(format!("CHARGE#{key}"))),
        (SK, s(operation.as_str().to_ascii_uppercase())),
    ]
}

type Item = HashMap<String, AttributeValue>;

impl DynamoPayments {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPayments {
            client,
            table: table.into(),
        }
    }

    fn item(payment: &Payment) -> Result<Item, RepositoryError> {
        let mut item: Item = serde_dynamo::to_item(payment).map_err(unavailable)?;
        item.insert(PK.into(), payment_pk(&payment.order_id));
        item.insert(SK.into(), s(PAYMENT_SK));
        item.insert(GSI1_PK.into(), s(dynamo::owner_pk(&payment.customer_id)));
        item.insert(
            GSI1_SK.into(),
            s(kit::page::sort_key(
                payment.created_at,
                payment.order_id.as_str(),
            )),
        );
        Ok(item)
    }

    /// The outcome of a committed change, in the port's words.
    async fn get_item(
        &self,
        key: [(&'static str, AttributeValue); 2],
    ) -> Result<Option<Item>, RepositoryError> {
        let [(pk, pk_value), (sk, sk_value)] = key;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .consistent_read(true)
            .send()
            .step("dynamodb.GetItem")
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }
}

impl PaymentRepository for DynamoPayments {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepositoryError> {
        self.get_item([(PK, payment_pk(order_id)), (SK, s(PAYMENT_SK))])
            .await?
            .map(|item| serde_dynamo::from_item(item).map_err(unavailable))
            .transpose()
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let now = chrono::Utc::now().timestamp();
        let change = Transaction::new(&self.table)
            .create(Self::item(payment)?)
            .and_then(|t| t.publish(events))
            .and_then(|t| t.processed(PROCESSED_SCOPE, processed_event, now))
            .map_err(unavailable)?;
        change.commit(&self.client).await.map_err(write_error)
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let now = chrono::Utc::now().timestamp();
        let change = Transaction::new(&self.table)
            .update(Self::item(payment)?, expected_version)
            .and_then(|t| t.publish(events))
            .and_then(|t| t.processed(PROCESSED_SCOPE, processed_event, now))
            .map_err(unavailable)?;
        change.commit(&self.client).await.map_err(write_error)
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        let key = idempotency::Key::new(PROCESSED_SCOPE, event_id).map_err(unavailable)?;
        let store = idempotency::DynamoIdempotency::new(self.client.clone(), self.table.clone());
        Ok(store.get(&key).await.map_err(unavailable)?.is_some())
    }
}

impl ChargeLedger for DynamoPayments {
    async fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> Result<Option<LedgerEntry>, RepositoryError> {
        self.get_item(ledger_key(operation, key))
            .await?
            .map(|item| serde_dynamo::from_item(item).map_err(unavailable))
            .transpose()
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<LedgerEntry, RepositoryError> {
        let mut item: Item = serde_dynamo::to_item(entry).map_err(unavailable)?;
        item.extend(
            ledger_key(entry.operation, &entry.key).map(|(name, value)| (name.to_owned(), value)),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .step("dynamodb.PutItem")
            .await;
        match result {
            Ok(_) => Ok(entry.clone()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                self.find(entry.operation, &entry.key)
                    .await?
                    .ok_or_else(|| RepositoryError::Unavailable("ledger entry vanished".into()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
