//! The order repository in memory: a [`kit::memory::Table`], the twin of the DynamoDB table
//! (atomic writes of an order with its outbox events, version checks, processed-event markers,
//! idempotency records, the per-customer open-order cap), with the same error mapping as the
//! DynamoDB adapter; and the per-customer write counters.

use chrono::{DateTime, Utc};
use kit::{
    events::Envelope,
    idempotency::{self, Record},
    memory::{Change, Table},
    rate_limit::{Decision, MemoryRateLimiter},
};

use super::{customer_sort_key, insert_error, update_error};
use crate::{
    domain::{CustomerId, Order, OrderId, Status},
    ports::{IdempotentResponse, Limits, OrderRepository, Page, RepositoryError},
};

/// Orders in memory.
#[derive(Debug, Default)]
pub struct MemoryOrders {
    table: Table<Order>,
    writes: MemoryRateLimiter,
    limits: Limits,
}

impl MemoryOrders {
    /// The same store holding customers to `limits` instead of the defaults.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

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

    async fn count_write(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Decision, RepositoryError> {
        Ok(self
            .writes
            .hit(customer.as_str(), &self.limits.writes, now.timestamp()))
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
        let max = self.limits.max_open_orders;
        let customer = order.customer_id.clone();
        let change = Change::create(order.id.as_str(), order.clone())
            .publish(events)
            .idempotency(record)
            .guard(move |orders| {
                let open = orders
                    .filter(|o| o.customer_id == customer && o.status == Status::Pending)
                    .count();
                open < usize::try_from(max).unwrap_or(usize::MAX)
            });
        self.table
            .commit(change)
            .map_err(|e| insert_error(e, &self.limits))
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
