//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking.

pub mod dynamodb;
pub mod memory;

use kit::dynamo::CommitError;

use crate::{domain::Record, ports::StoreError};

/// The sort value of a record in "records by customer".
pub(crate) fn customer_sort_key(record: &Record) -> String {
    kit::page::sort_key(record.confirmed_at, &record.order_id)
}

/// What a failed commit means to the service, whichever store failed it.
pub(crate) fn store_error(error: CommitError) -> StoreError {
    match error {
        CommitError::AlreadyProcessed => StoreError::AlreadyProcessed,
        error => StoreError::Unavailable(Box::new(error)),
    }
}

/// Records are written once and never updated: their version is always 0.
impl kit::memory::Versioned for Record {
    fn version(&self) -> u64 {
        0
    }
}
