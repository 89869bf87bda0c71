//! What the orders service needs from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};
use kit::{
    events::Envelope,
    idempotency,
    rate_limit::{Decision, RateLimit},
};

use crate::domain::{CustomerId, Order, OrderId};

/// A page of a customer's orders, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub orders: Vec<Order>,
    /// Opaque cursor for the next page, `None` on the last one.
    pub next: Option<String>,
}

/// A stored response to replay for a repeated `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentResponse {
    pub key: idempotency::Key,
    pub fingerprint: String,
    pub response: serde_json::Value,
}

/// What the repository holds each customer to (set once, when it is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Writes (place, cancel) per window: [`OrderRepository::count_write`].
    pub writes: RateLimit,
    /// PENDING orders one customer may have at once: [`OrderRepository::insert`] refuses more.
    pub max_open_orders: u32,
}

impl Default for Limits {
    /// The defaults of the template's parameters (`crate::config`).
    fn default() -> Self {
        Limits {
            writes: RateLimit {
                limit: crate::config::DEFAULT_WRITE_LIMIT,
                window: std::time::Duration::from_secs(crate::config::DEFAULT_WRITE_WINDOW_SECONDS),
            },
            max_open_orders: crate::config::DEFAULT_MAX_OPEN_ORDERS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The order changed since it was read (optimistic concurrency).
    #[error("the order was changed concurrently")]
    VersionConflict,
    /// The event was already applied (its marker exists).
    #[error("the event was already processed")]
    AlreadyProcessed,
    /// A live record holds this idempotency key.
    #[error("the idempotency key is already used")]
    IdempotencyKeyTaken,
    /// The customer already has the most PENDING orders [`Limits`] allows.
    #[error("the customer has {max} open orders already")]
    TooManyOpenOrders { max: u32 },
    /// Another request was writing the same items at the same moment (DynamoDB's
    /// `TransactionConflict`): nothing was written; the client may retry.
    #[error("a concurrent request was writing the same items")]
    Conflict,
    #[error("the order store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Orders, their outbox and their idempotency records, in one store so that each change
/// commits atomically with its events.
pub trait OrderRepository: Send + Sync {
    fn get(
        &self,
        id: &OrderId,
    ) -> impl Future<Output = Result<Option<Order>, RepositoryError>> + Send;

    /// A customer's orders, newest first, at most `limit`, after the sort key `after`
    /// (decoded from a client's cursor by [`kit::page::params`]).
    fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page, RepositoryError>> + Send;

    /// The ids of at most `limit` PENDING orders placed before `cutoff`, oldest first (the
    /// saga timeout's work list; it may lag a little behind the orders themselves).
    fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OrderId>, RepositoryError>> + Send;

    /// Counts one write by `customer` at `now` against [`Limits::writes`], across every
    /// instance of the function.
    fn count_write(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Decision, RepositoryError>> + Send;

    /// Stores a new order with its events and, when given, the idempotent response — all or
    /// nothing; [`RepositoryError::TooManyOpenOrders`] when its customer already has
    /// [`Limits::max_open_orders`] PENDING orders. Every [`update`](Self::update) that takes an
    /// order out of PENDING frees its place.
    fn insert(
        &self,
        order: &Order,
        events: &[Envelope],
        idempotency: Option<&IdempotentResponse>,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Saves a changed order if it is still at `expected_version`, with its events and, when
    /// the change answers an event, that event's processed marker — all or nothing.
    fn update(
        &self,
        order: &Order,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Whether the event with this id was already applied.
    fn is_processed(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// The live idempotency record for `key`.
    fn idempotency_record(
        &self,
        key: &idempotency::Key,
    ) -> impl Future<Output = Result<Option<idempotency::Record>, RepositoryError>> + Send;
}
