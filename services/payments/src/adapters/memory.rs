//! Payments in memory: a [`kit::memory::Table`], the twin of the DynamoDB table (atomic writes
//! of a payment with its outbox events and processed marker, version checks), with the same
//! error mapping as the DynamoDB adapter; and the simulator's ledger, where the first entry per
//! operation and key wins.

use std::sync::{Mutex, MutexGuard, PoisonError};

use kit::{
    events::Envelope,
    memory::{Change, Table},
};

use super::write_error;
use crate::{
    domain::{OrderId, Payment},
    ports::{ChargeLedger, LedgerEntry, Operation, PaymentRepository, RepositoryError},
};

/// Payments (and the simulator's ledger) in memory.
#[derive(Debug, Default)]
pub struct MemoryPayments {
    table: Table<Payment>,
    ledger: Mutex<Vec<LedgerEntry>>,
}

impl MemoryPayments {
    fn ledger(&self) -> MutexGuard<'_, Vec<LedgerEntry>> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.table.outbox()
    }

    /// How many ledger entries of `operation` exist for `key`.
    pub fn count(&self, operation: Operation, key: &str) -> usize {
        self.ledger()
            .iter()
            .filter(|e| e.operation == operation && e.key == key)
            .count()
    }

    /// How many charges the simulator recorded for `key` (an order id).
    pub fn charges(&self, key: &str) -> usize {
        self.count(Operation::Charge, key)
    }

    /// How many refunds the simulator recorded for `key` (an order id).
    pub fn refunds(&self, key: &str) -> usize {
        self.count(Operation::Refund, key)
    }

    /// Whether the simulator holds money for `key`: an approved authorization neither
    /// captured nor voided.
    pub fn held(&self, key: &str) -> bool {
        let ledger = self.ledger();
        let has = |operation: Operation| {
            ledger
                .iter()
                .any(|e| e.operation == operation && e.key == key && e.decline_reason.is_none())
        };
        has(Operation::Charge) && !has(Operation::Capture) && !has(Operation::Void)
    }

    /// Whether the simulator took money for `key`: captured and not refunded.
    pub fn captured(&self, key: &str) -> bool {
        self.count(Operation::Capture, key) > 0 && self.refunds(key) == 0
    }
}

impl PaymentRepository for MemoryPayments {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepositoryError> {
        Ok(self.table.get(order_id.as_str()))
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let change = Change::create(payment.order_id.as_str(), payment.clone())
            .publish(events)
            .processed(processed_event);
        self.table.commit(change).map_err(write_error)
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let change = Change::update(payment.order_id.as_str(), payment.clone(), expected_version)
            .publish(events)
            .processed(processed_event);
        self.table.commit(change).map_err(write_error)
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        Ok(self.table.is_processed(event_id))
    }
}

impl ChargeLedger for MemoryPayments {
    async fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> Result<Option<LedgerEntry>, RepositoryError> {
        Ok(self
            .ledger()
            .iter()
            .find(|e| e.operation == operation && e.key == key)
            .cloned())
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<LedgerEntry, RepositoryError> {
        let mut ledger = self.ledger();
        let first = ledger
            .iter()
            .find(|e| e.operation == entry.operation && e.key == entry.key);
        if let Some(first) = first {
            return Ok(first.clone());
        }
        ledger.push(entry.clone());
        Ok(entry.clone())
    }
}
