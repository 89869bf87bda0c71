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
    pub fn count(&self, operation: Operation, key: &str) -> usize {
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

    /// Whether the simulator holds money for `key`: an approved authorization neither
    /// captured nor voided.
    pub fn held(&self, key: &str) -> bool {
        let state = self.state();
        let has = |operation: Operation| {
            state
                .ledger
                .iter()
                .any(|e| e.operation == operation && e.key == key && e.decline_reason.is_none())
        };
        has(Operation::Charge) && !has(Operation::Capture) && !has(Operation::Void)
    }

    /// Whether the simulator took money for `key`: captured and not refunded.
    pub fn captured(&self, key: &str) -> bool {
        self.count(Operation::Capture, key) > 0 && self.refunds(key) == 0
    }

    /// Writes `payment` with its events and the event's processed marker if `holds` accepts
    /// the current payment — all or nothing, like the DynamoDB transaction.
    fn write(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
        holds: impl FnOnce(Option<&Payment>) -> bool,
        on_payment: RepositoryError,
    ) -> Result<(), RepositoryError> {
        let mut state = self.state();
        if processed_event.is_some_and(|id| state.processed.contains(id)) {
            return Err(RepositoryError::AlreadyProcessed);
        }
        if !holds(state.payments.get(&payment.order_id)) {
            return Err(on_payment);
        }
        if let Some(id) = processed_event {
            state.processed.insert(id.to_owned());
        }
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
        processed_event: Option<&str>,
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
        processed_event: Option<&str>,
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
