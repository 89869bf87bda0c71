//! The order repository on the service's DynamoDB table (keys in docs/architecture.md):
//! `ORDER#<id>` items with a `version` for optimistic concurrency, the `gsi1` index for
//! "orders by customer", and outbox / idempotency / processed-event items written in the same
//! `TransactWriteItems` as the change they belong to.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, Put, TransactWriteItem},
};
use kit::{
    dynamo::{self, GSI1, GSI1_PK, GSI1_SK, PK, SK, TransactError, n, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
    outbox,
};

use super::customer_sort_key;
use crate::{
    domain::{CustomerId, Order, OrderId},
    ports::{IdempotentResponse, OrderRepository, Page, RepositoryError},
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

fn order_pk(id: &OrderId) -> AttributeValue {
    s(format!("ORDER#{id}"))
}

fn customer_pk(customer: &CustomerId) -> AttributeValue {
    s(format!("CUSTOMER#{}", customer.as_str()))
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
        item.insert(PK.into(), order_pk(&order.id));
        item.insert(SK.into(), s("ORDER"));
        item.insert(GSI1_PK.into(), customer_pk(&order.customer_id));
        item.insert(GSI1_SK.into(), s(customer_sort_key(order)));
        Ok(item)
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, RepositoryError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            put = put.expression_attribute_values(*name, value.clone());
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(unavailable)?)
            .build())
    }

    fn outbox(&self, events: &[Envelope]) -> Result<Vec<TransactWriteItem>, RepositoryError> {
        events
            .iter()
            .map(|e| outbox::put(&self.table, e).map_err(unavailable))
            .collect()
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
            .key(PK, order_pk(id))
            .key(SK, s("ORDER"))
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
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_values(":pk", customer_pk(customer))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(sort_key) = after {
            let id = sort_key.rsplit('#').next().unwrap_or_default().to_owned();
            query = query
                .exclusive_start_key(GSI1_PK, customer_pk(customer))
                .exclusive_start_key(GSI1_SK, s(sort_key))
                .exclusive_start_key(PK, s(format!("ORDER#{id}")))
                .exclusive_start_key(SK, s("ORDER"));
        }
        let output = query.send().await.map_err(unavailable)?;
        let orders: Vec<Order> =
            serde_dynamo::from_items(output.items.unwrap_or_default()).map_err(unavailable)?;
        let next = output
            .last_evaluated_key
            .and_then(|key| key.get(GSI1_SK).and_then(|v| v.as_s().ok()).cloned())
            .map(|sort_key| kit::page::encode_cursor(&sort_key));
        Ok(Page { orders, next })
    }

    async fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<(), RepositoryError> {
        let mut items = vec![self.put(Self::item(order)?, "attribute_not_exists(pk)", &[])?];
        items.extend(self.outbox(events)?);
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
        let mut items = vec![self.put(
            Self::item(order)?,
            "version = :expected",
            &[(":expected", n(expected))],
        )?];
        items.extend(self.outbox(events)?);
        if let Some(event_id) = processed_event {
            let key = idempotency::Key::new(PROCESSED_SCOPE, event_id).map_err(unavailable)?;
            items.push(
                idempotency::put_completed(
                    &self.table,
                    &key,
                    "",
                    &serde_json::Value::Null,
                    idempotency::EVENT_TTL,
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
