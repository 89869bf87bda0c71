//! The order repository on the service's DynamoDB table (keys in docs/architecture.md):
//! `ORDER#<id>` items with a `version` for optimistic concurrency, the `gsi1` index for
//! "orders by customer", and outbox / idempotency / processed-event items written in the same
//! `TransactWriteItems` as the change they belong to.

use std::collections::HashMap;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use kit::{
    dynamo::{self, Entity, GSI1_PK, GSI1_SK, PK, SK, TransactError, n, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
    outbox,
};

use super::customer_sort_key;
use crate::{
    domain::{CustomerId, Order, OrderId},
    ports::{IdempotentResponse, OrderRepository, Page, RepositoryError},
};

/// Order items: `ORDER#<id>` / `ORDER`.
const ORDER: Entity = Entity {
    pk_prefix: "ORDER#",
    sk: "ORDER",
};
/// Scope of the processed-event markers of the events function.
const PROCESSED_SCOPE: &str = "orders-events";

/// Orders in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    client: Client,
    table: String,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(error))
}

impl DynamoOrders {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOrders {
            client,
            table: table.into(),
        }
    }

    fn item(order: &Order) -> Result<HashMap<String, AttributeValue>, RepositoryError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(order).map_err(unavailable)?;
        item.insert(PK.into(), s(format!("{}{}", ORDER.pk_prefix, order.id)));
        item.insert(SK.into(), s(ORDER.sk));
        item.insert(GSI1_PK.into(), s(dynamo::owner_pk(&order.customer_id)));
        item.insert(GSI1_SK.into(), s(customer_sort_key(order)));
        Ok(item)
    }

    fn store(&self) -> idempotency::DynamoIdempotency {
        idempotency::DynamoIdempotency::new(self.client.clone(), self.table.clone())
    }
}

impl OrderRepository for DynamoOrders {
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, RepositoryError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("{}{id}", ORDER.pk_prefix)))
            .key(SK, s(ORDER.sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(unavailable))
            .transpose()
    }

    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, RepositoryError> {
        let page = dynamo::query_owner(
            &self.client,
            &self.table,
            ORDER,
            &dynamo::owner_pk(customer),
            limit,
            after,
        )
        .await
        .map_err(unavailable)?;
        Ok(Page {
            orders: serde_dynamo::from_items(page.items).map_err(unavailable)?,
            next: page.next,
        })
    }

    async fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<(), RepositoryError> {
        let mut items = vec![
            dynamo::put(
                &self.table,
                Self::item(order)?,
                "attribute_not_exists(pk)",
                &[],
            )
            .map_err(unavailable)?,
        ];
        items.extend(outbox::puts(&self.table, events).map_err(unavailable)?);
        if let Some(stored) = idempotency {
            items.push(
                idempotency::put_completed(
                    &self.table,
                    &stored.key,
                    &stored.fingerprint,
                    &stored.response,
                    idempotency::HTTP_TTL,
                    chrono::Utc::now().timestamp(),
                )
                .map_err(unavailable)?,
            );
        }
        let idempotency_index = items.len() - 1;
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TransactError::ConditionFailed { failed })
                if idempotency.is_some() && failed.contains(&idempotency_index) =>
            {
                Err(RepositoryError::IdempotencyKeyTaken)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let expected = i64::try_from(expected_version).map_err(unavailable)?;
        let mut items = vec![
            dynamo::put(
                &self.table,
                Self::item(order)?,
                "version = :expected",
                &[(":expected", n(expected))],
            )
            .map_err(unavailable)?,
        ];
        items.extend(outbox::puts(&self.table, events).map_err(unavailable)?);
        if let Some(event_id) = processed_event {
            items.push(
                idempotency::put_processed(
                    &self.table,
                    PROCESSED_SCOPE,
                    event_id,
                    chrono::Utc::now().timestamp(),
                )
                .map_err(unavailable)?,
            );
        }
        let marker_index = items.len() - 1;
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TransactError::ConditionFailed { failed }) if failed.contains(&0) => {
                Err(RepositoryError::VersionConflict)
            }
            Err(TransactError::ConditionFailed { failed })
                if processed_event.is_some() && failed.contains(&marker_index) =>
            {
                Err(RepositoryError::AlreadyProcessed)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        let key = idempotency::Key::new(PROCESSED_SCOPE, event_id).map_err(unavailable)?;
        Ok(self.store().get(&key).await.map_err(unavailable)?.is_some())
    }

    async fn idempotency_record(
        &self,
        key: &idempotency::Key,
    ) -> Result<Option<idempotency::Record>, RepositoryError> {
        self.store().get(key).await.map_err(unavailable)
    }
}
