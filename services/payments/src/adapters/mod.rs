//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking, and
//! the simulated payment provider (on either store's ledger).

pub mod dynamodb;
pub mod memory;
pub mod simulator;

use kit::dynamo::CommitError;

use crate::{domain::Payment, ports::RepositoryError};

/// What a failed write of a payment means to the service, whichever store failed it.
pub(crate) fn write_error(error: CommitError) -> RepositoryError {
    match error {
        CommitError::AlreadyProcessed => RepositoryError::AlreadyProcessed,
        CommitError::EntityExists => RepositoryError::PaymentExists,
        // Changed since read, or being written right now: read again and retry.
        CommitError::EntityChanged | CommitError::Concurrent => RepositoryError::VersionConflict,
        error => RepositoryError::Unavailable(Box::new(error)),
    }
}

impl kit::memory::Versioned for Payment {
    fn version(&self) -> u64 {
        self.version
    }
}
