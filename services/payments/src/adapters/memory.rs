//! Payments in memory, with the same rules as DynamoDB: atomic writes of a payment with its
//! outbox events and processed marker, version checks, a ledger where the first entry per
//! operation and key wins.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
};

use kit::events::Envelope;

use crate::{
    domain::{OrderId, Payment},
    ports::{ChargeLedger, LedgerEntry, Operation, PaymentRepository, RepositoryError},
};

#[derive(Debug, Default)]
struct State {
    payments: HashMap<OrderId, Payment>,
    outbox: Vec<Envelope>,
    processed: HashSet<String>,
    ledger: Vec<LedgerEntry>,
}

/// Payments (and the simulator's ledger) in memory.
#[derive(Debug, Default)]
pub struct MemoryPayments {
    state: Mutex<State>,
}

impl MemoryPayments {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.state().outbox.clone()
    }

    /// How many ledger entries of `operation` exist for `key`.
    fn count(&self, operation: Operation, key: &str) -> usize {
        self.state()
            .ledger
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

    /// Writes `payment` with its events and the event's processed marker if `holds` accepts
    /// the current payment — all or nothing, like the DynamoDB transaction.
    fn write(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: &str,
        holds: impl FnOnce(Option<&Payment>) -> bool,
        on_payment: RepositoryError,
    ) -> Result<(), RepositoryError> {
        let mut state = self.state();
        if state.processed.contains(processed_event) {
            return Err(RepositoryError::AlreadyProcessed);
        }
        if !holds(state.payments.get(&payment.order_id)) {
            return Err(on_payment);
        }
        state.processed.insert(processed_event.to_owned());
        state
            .payments
            .insert(payment.order_id.clone(), payment.clone());
        state.outbox.extend_from_slice(events);
        Ok(())
    }
}

impl PaymentRepository for MemoryPayments {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepositoryError> {
        Ok(self.state().payments.get(order_id).cloned())
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        let absent = |current: Option<&Payment>| current.is_none();
        self.write(
            payment,
            events,
            processed_event,
            absent,
            RepositoryError::PaymentExists,
        )
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        let unchanged =
            |current: Option<&Payment>| current.map(|p| p.version) == Some(expected_version);
        self.write(
            payment,
            events,
            processed_event,
            unchanged,
            RepositoryError::VersionConflict,
        )
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        Ok(self.state().processed.contains(event_id))
    }
}

impl ChargeLedger for MemoryPayments {
    async fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> Result<Option<LedgerEntry>, RepositoryError> {
        Ok(self
            .state()
            .ledger
            .iter()
            .find(|e| e.operation == operation && e.key == key)
            .cloned())
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<LedgerEntry, RepositoryError> {
        let mut state = self.state();
        let first = state
            .ledger
            .iter()
            .find(|e| e.operation == entry.operation && e.key == entry.key);
        if let Some(first) = first {
            return Ok(first.clone());
        }
        state.ledger.push(entry.clone());
        Ok(entry.clone())
    }
}
