//! What the __name__ service needs from the outside world.

use std::future::Future;

use crate::domain::{CustomerId, Record};

/// A page of a customer's records, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    /// Opaque cursor for the next page, `None` on the last one.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The event that caused the record was already handled (its marker exists).
    #[error("the event was already processed")]
    AlreadyProcessed,
    #[error("the record store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where the records live.
pub trait RecordStore: Send + Sync {
    /// Stores `record` with the processed marker of the event that caused it
    /// (`record.event_id`), both or neither; [`StoreError::AlreadyProcessed`] when the marker
    /// exists.
    fn record(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A customer's records, newest first, at most `limit`, after the sort key `after`
    /// (decoded from a client's cursor by [`kit::page::params`]).
    fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
}
