//! The order repository in memory, with the same rules as DynamoDB: atomic writes of an order
//! with its outbox events, version checks, processed-event markers, idempotency records, the
//! per-customer open-order cap and write counters.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use kit::{
    events::Envelope,
    idempotency::{self, IdempotencyStore, MemoryIdempotency, Record},
    rate_limit::{Decision, MemoryRateLimiter},
};

use super::customer_sort_key;
use crate::{
    domain::{CustomerId, Order, OrderId, Status},
    ports::{IdempotentResponse, Limits, OrderRepository, Page, RepositoryError},
};

#[derive(Debug, Default)]
struct State {
    orders: HashMap<OrderId, Order>,
    outbox: Vec<Envelope>,
    processed: HashSet<String>,
    /// Each customer's PENDING order ids.
    open: HashMap<CustomerId, HashSet<OrderId>>,
}

/// Orders in memory.
#[derive(Debug, Default)]
pub struct MemoryOrders {
    state: Mutex<State>,
    idempotency: MemoryIdempotency,
    writes: MemoryRateLimiter,
    limits: Limits,
}

impl MemoryOrders {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The same store holding customers to `limits` instead of the defaults.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.state().outbox.clone()
    }
}

impl OrderRepository for MemoryOrders {
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, RepositoryError> {
        Ok(self.state().orders.get(id).cloned())
    }

    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, RepositoryError> {
        let mine: Vec<(String, Order)> = self
            .state()
            .orders
            .values()
            .filter(|o| &o.customer_id == customer)
            .map(|o| (customer_sort_key(o), o.clone()))
            .collect();
        let (orders, next) = kit::page::in_memory(mine, limit, after);
        Ok(Page { orders, next })
    }

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, RepositoryError> {
        let state = self.state();
        let mut due: Vec<&Order> = state
            .orders
            .values()
            .filter(|o| o.status == Status::Pending && o.created_at < cutoff)
            .collect();
        due.sort_by_key(|o| (o.created_at, o.id.as_str().to_owned()));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|o| o.id.clone())
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
        // Like the transaction: a taken key is reported before a full cap.
        if let Some(stored) = idempotency {
            let live = self
                .idempotency
                .get(&stored.key)
                .await
                .map_err(|e| RepositoryError::Unavailable(Box::new(e)))?;
            if live.is_some() {
                return Err(RepositoryError::IdempotencyKeyTaken);
            }
        }
        let mut state = self.state();
        if state.orders.contains_key(&order.id) {
            return Err(RepositoryError::Unavailable("duplicate order id".into()));
        }
        let max = self.limits.max_open_orders;
        let open = state.open.get(&order.customer_id).map_or(0, HashSet::len);
        if open >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(RepositoryError::TooManyOpenOrders { max });
        }
        if let Some(stored) = idempotency {
            let record =
                Record::completed(&stored.fingerprint, &stored.response, idempotency::HTTP_TTL);
            self.idempotency
                .insert_if_absent(&stored.key, record)
                .map_err(|_| RepositoryError::IdempotencyKeyTaken)?;
        }
        state
            .open
            .entry(order.customer_id.clone())
            .or_default()
            .insert(order.id.clone());
        state.orders.insert(order.id.clone(), order.clone());
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let mut state = self.state();
        let current = state.orders.get(&order.id).map(|o| o.version);
        if current != Some(expected_version) {
            return Err(RepositoryError::VersionConflict);
        }
        if let Some(event_id) = processed_event {
            if state.processed.contains(event_id) {
                return Err(RepositoryError::AlreadyProcessed);
            }
            state.processed.insert(event_id.to_owned());
        }
        if order.status != Status::Pending
            && let Some(open) = state.open.get_mut(&order.customer_id)
        {
            open.remove(&order.id);
        }
        state.orders.insert(order.id.clone(), order.clone());
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        Ok(self.state().processed.contains(event_id))
    }

    async fn idempotency_record(
        &self,
        key: &idempotency::Key,
    ) -> Result<Option<Record>, RepositoryError> {
        self.idempotency
            .get(key)
            .await
            .map_err(|e| RepositoryError::Unavailable(Box::new(e)))
    }
}
