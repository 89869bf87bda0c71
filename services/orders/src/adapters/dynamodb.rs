//! The order repository on the service's DynamoDB table (keys in docs/architecture.md):
//! `ORDER#<id>` items with a `version` for optimistic concurrency, the `gsi1` index for
//! "orders by customer", and outbox / idempotency / processed-event items written in the same
//! `TransactWriteItems` as the change they belong to. Per customer: the ids of its PENDING
//! orders in the set `open` of `OPEN#<sub>` / `OPEN` (added by the order's insert on the
//! condition that the set is below the cap, removed by the update that takes it out of
//! PENDING), and its write counters `RATE#<sub>` / `WINDOW#<start>` (`kit::rate_limit`).

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, TransactWriteItem, Update},
};
use chrono::{DateTime, Utc};
use kit::telemetry::Step as _;
use kit::{
    dynamo::{self, Entity, GSI1_PK, GSI1_SK, PK, SK, Transaction, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
    rate_limit::{self, Decision},
};

use super::{customer_sort_key, insert_error, update_error};
use crate::{
    domain::{CustomerId, Order, OrderId, Status},
    ports::{IdempotentResponse, Limits, OrderRepository, Page, RepositoryError},
};

/// Order items: `ORDER#<id>` / `ORDER`.
const ORDER: Entity = Entity {
    pk_prefix: "ORDER#",
    sk: "ORDER",
};
/// Scope of the processed-event markers of the events function.
const PROCESSED_SCOPE: &str = "orders-events";
/// The sparse index of PENDING orders, oldest first: only a PENDING order carries its keys,
/// so an order leaves the index with the write that confirms or cancels it.
pub const PENDING_INDEX: &str = "pending";
pub const PENDING_PK: &str = "pending_pk";
pub const PENDING_SK: &str = "pending_sk";
const PENDING: &str = "PENDING";
/// The item holding a customer's open (PENDING) order ids: `OPEN#<sub>` / `OPEN`.
const OPEN: Entity = Entity {
    pk_prefix: "OPEN#",
    sk: "OPEN",
};

/// Orders in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    client: Client,
    table: String,
    limits: Limits,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(error))
}

impl DynamoOrders {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOrders {
            client,
            table: table.into(),
            limits: Limits::default(),
        }
    }

    /// The same store holding customers to `limits` instead of the defaults.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The change of `customer`'s open-order set: `ADD` `order` (if the set is below the cap)
    /// or `DELETE` it (idempotent: removing an id that is not there changes nothing).
    fn open_orders(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        add: bool,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("{}{}", OPEN.pk_prefix, customer.as_str())))
            .key(SK, s(OPEN.sk))
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":id", AttributeValue::Ss(vec![order.to_string()]));
        update = if add {
            update
                .update_expression("ADD #open :id")
                .condition_expression("attribute_not_exists(#open) OR size(#open) < :max")
                .expression_attribute_values(
                    ":max",
                    dynamo::n(i64::from(self.limits.max_open_orders)),
                )
        } else {
            update.update_expression("DELETE #open :id")
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    fn item(order: &Order) -> Result<HashMap<String, AttributeValue>, RepositoryError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(order).map_err(unavailable)?;
        item.insert(PK.into(), s(format!("{}{}", ORDER.pk_prefix, order.id)));
        item.insert(SK.into(), s(ORDER.sk));
        item.insert(GSI1_PK.into(), s(dynamo::owner_pk(&order.customer_id)));
        item.insert(GSI1_SK.into(), s(customer_sort_key(order)));
        if order.status == Status::Pending {
            item.insert(PENDING_PK.into(), s(PENDING));
            item.insert(PENDING_SK.into(), s(customer_sort_key(order)));
        }
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
            .step("dynamodb.GetItem")
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

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, RepositoryError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("#pk = :pk AND #sk < :cutoff")
            .expression_attribute_names("#pk", PENDING_PK)
            .expression_attribute_names("#sk", PENDING_SK)
            .expression_attribute_values(":pk", s(PENDING))
            .expression_attribute_values(":cutoff", s(kit::page::sort_key(cutoff, "")))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .step("dynamodb.Query")
            .await
            .map_err(unavailable)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| item.get(PK)?.as_s().ok()?.strip_prefix(ORDER.pk_prefix))
            .filter_map(OrderId::parse)
            .collect())
    }

    async fn count_write(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Decision, RepositoryError> {
        rate_limit::hit(
            &self.client,
            &self.table,
            customer.as_str(),
            &self.limits.writes,
            now.timestamp(),
        )
        .await
        .map_err(unavailable)
    }

    async fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<(), RepositoryError> {
        let now = chrono::Utc::now().timestamp();
        let record = idempotency.map(|r| (&r.key, r.fingerprint.as_str(), &r.response));
        let open = self.open_orders(&order.customer_id, &order.id, true)?;
        let change = Transaction::new(&self.table)
            .create(Self::item(order)?)
            .and_then(|t| t.publish(events))
            .and_then(|t| t.idempotency(record, idempotency::HTTP_TTL, now))
            .map_err(unavailable)?
            .guard(open);
        change
            .commit(&self.client)
            .await
            .map_err(|e| insert_error(e, &self.limits))
    }

    async fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let now = chrono::Utc::now().timestamp();
        let mut change = Transaction::new(&self.table)
            .update(Self::item(order)?, expected_version)
            .and_then(|t| t.publish(events))
            .and_then(|t| t.processed(PROCESSED_SCOPE, processed_event, now))
            .map_err(unavailable)?;
        if order.status != Status::Pending {
            change = change.guard(self.open_orders(&order.customer_id, &order.id, false)?);
        }
        change.commit(&self.client).await.map_err(update_error)
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
