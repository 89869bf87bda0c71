//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking.

pub mod dynamodb;
pub mod memory;

use kit::dynamo::CommitError;

use crate::{
    domain::Order,
    ports::{Limits, RepositoryError},
};

/// The sort value of an order in "orders by customer" (ids are UUID v7, so it sorts by time).
pub(crate) fn customer_sort_key(order: &Order) -> String {
    kit::page::sort_key(order.created_at, order.id.as_str())
}

/// What a failed insert means to the service, whichever store failed it (its guard is the
/// open-order cap of `limits`).
pub(crate) fn insert_error(error: CommitError, limits: &Limits) -> RepositoryError {
    match error {
        CommitError::IdempotencyKeyTaken => RepositoryError::IdempotencyKeyTaken,
        CommitError::GuardRefused => RepositoryError::TooManyOpenOrders {
            max: limits.max_open_orders,
        },
        CommitError::Concurrent => RepositoryError::Conflict,
        error => RepositoryError::Unavailable(Box::new(error)),
    }
}

/// What a failed update means to the service, whichever store failed it.
pub(crate) fn update_error(error: CommitError) -> RepositoryError {
    match error {
        CommitError::AlreadyProcessed => RepositoryError::AlreadyProcessed,
        // Changed since read, or being written right now: read again and retry.
        CommitError::EntityChanged | CommitError::Concurrent => RepositoryError::VersionConflict,
        error => RepositoryError::Unavailable(Box::new(error)),
    }
}

impl kit::memory::Versioned for Order {
    fn version(&self) -> u64 {
        self.version
    }
}
