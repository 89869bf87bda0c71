//! The order repository in memory: a [`kit::memory::Table`], the twin of the DynamoDB table
//! (atomic writes of an order with its outbox events, version checks, processed-event markers,
//! idempotency records), with the same error mapping as the DynamoDB adapter.

use chrono::{DateTime, Utc};
use kit::{
    events::Envelope,
    idempotency::{self, Record},
    memory::{Change, Table},
};

use super::{customer_sort_key, insert_error, update_error};
use crate::{
    domain::{CustomerId, Order, OrderId, Status},
    ports::{IdempotentResponse, OrderRepository, Page, RepositoryError},
};

/// Orders in memory.
#[derive(Debug, Default)]
pub struct MemoryOrders {
    table: Table<Order>,
}

impl MemoryOrders {
    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.table.outbox()
    }
}

impl OrderRepository for MemoryOrders {
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, RepositoryError> {
        Ok(self.table.get(id.as_str()))
    }

    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, RepositoryError> {
        let mine: Vec<(String, Order)> = self
            .table
            .select(|o| &o.customer_id == customer)
            .into_iter()
            .map(|o| (customer_sort_key(&o), o))
            .collect();
        let (orders, next) = kit::page::in_memory(mine, limit, after);
        Ok(Page { orders, next })
    }

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, RepositoryError> {
        let mut due = self
            .table
            .select(|o| o.status == Status::Pending && o.created_at < cutoff);
        due.sort_by_key(|o| (o.created_at, o.id.as_str().to_owned()));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|o| o.id)
            .collect())
    }

    async fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<(), RepositoryError> {
        let record = idempotency.map(|stored| {
            let record =
                Record::completed(&stored.fingerprint, &stored.response, idempotency::HTTP_TTL);
            (&stored.key, record)
        });
        let change = Change::create(order.id.as_str(), order.clone())
            .publish(events)
            .idempotency(record);
        self.table.commit(change).map_err(insert_error)
    }

    async fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let change = Change::update(order.id.as_str(), order.clone(), expected_version)
            .publish(events)
            .processed(processed_event);
        self.table.commit(change).map_err(update_error)
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        Ok(self.table.is_processed(event_id))
    }

    async fn idempotency_record(
        &self,
        key: &idempotency::Key,
    ) -> Result<Option<Record>, RepositoryError> {
        Ok(self.table.idempotency_record(key))
    }
}
