//! Payments in DynamoDB (keys in docs/architecture.md): `PAYMENT#<order id>` / `PAYMENT`
//! items with a `version` for optimistic concurrency and `gsi1pk` = `CUSTOMER#<sub>`; the
//! simulator's ledger as `CHARGE#<order id>` / `CHARGE` | `REFUND` items; outbox and
//! processed-event items written in the same `TransactWriteItems` as the payment.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client, error::SdkError, operation::put_item::PutItemError, types::AttributeValue,
};
use kit::{
    dynamo::{self, GSI1_PK, GSI1_SK, PK, SK, TransactError, n, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
    outbox,
};

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
    let sk = match operation {
        Operation::Charge => "CHARGE",
        Operation::Refund => "REFUND",
    };
    [(PK, s(format!("CHARGE#{key}"))), (SK, s(sk))]
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

    /// Writes `payment` (under `condition`) with its events and the event's processed marker,
    /// all or nothing; `on_payment` is the error when the payment's condition fails.
    async fn write(
        &self,
        payment: &Payment,
        (condition, values): (&str, &[(&str, AttributeValue)]),
        events: &[Envelope],
        processed_event: &str,
        on_payment: RepositoryError,
    ) -> Result<(), RepositoryError> {
        let mut items = vec![
            dynamo::put(&self.table, Self::item(payment)?, condition, values)
                .map_err(unavailable)?,
        ];
        items.extend(outbox::puts(&self.table, events).map_err(unavailable)?);
        items.push(
            idempotency::put_processed(
                &self.table,
                PROCESSED_SCOPE,
                processed_event,
                chrono::Utc::now().timestamp(),
            )
            .map_err(unavailable)?,
        );
        let marker = items.len() - 1;
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TransactError::ConditionFailed { failed }) if failed.contains(&marker) => {
                Err(RepositoryError::AlreadyProcessed)
            }
            Err(TransactError::ConditionFailed { failed }) if failed.contains(&0) => {
                Err(on_payment)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

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
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        let condition = ("attribute_not_exists(pk)", &[][..]);
        self.write(
            payment,
            condition,
            events,
            processed_event,
            RepositoryError::PaymentExists,
        )
        .await
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        let expected = i64::try_from(expected_version).map_err(unavailable)?;
        let values = [(":expected", n(expected))];
        self.write(
            payment,
            ("version = :expected", &values),
            events,
            processed_event,
            RepositoryError::VersionConflict,
        )
        .await
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
