//! What the payments service needs from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};
use kit::{events::Envelope, money::Money};
use serde::{Deserialize, Serialize};

pub use crate::domain::Operation;
use crate::domain::{ChargeOutcome, OrderId, Payment};

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The order already has a payment (or a cancelled marker).
    #[error("the order already has a payment")]
    PaymentExists,
    /// The payment changed since it was read (optimistic concurrency), or another transaction
    /// was writing it at the same moment (`TransactionConflict`): read it again and retry.
    #[error("the payment was changed concurrently")]
    VersionConflict,
    /// The event was already applied (its marker exists).
    #[error("the event was already processed")]
    AlreadyProcessed,
    #[error("the payment store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Payments, their outbox and the processed-event markers, in one store so that each change
/// commits atomically with its events.
pub trait PaymentRepository: Send + Sync {
    fn get(
        &self,
        order_id: &OrderId,
    ) -> impl Future<Output = Result<Option<Payment>, RepositoryError>> + Send;

    /// Stores the order's first payment with its events and, when given, the processed marker
    /// of the event that caused it — all or nothing.
    fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Saves a changed payment if it is still at `expected_version`, with its events and,
    /// when given, the processed marker of the event that caused it — all or nothing.
    fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Whether the event with this id was already applied.
    fn is_processed(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;
}

/// One authorization, as a provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// A repeated request with the same key returns the first result and charges nothing
    /// (we use the order id, like real providers' idempotency keys).
    pub idempotency_key: String,
    pub amount: Money,
    pub card_token: String,
    /// The delivery attempt of the message asking for it (1 on the first delivery).
    pub attempt: u32,
}

/// A capture, void or refund of the authorization made with `idempotency_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    pub idempotency_key: String,
    pub amount: Money,
    /// The delivery attempt of the message asking for it (1 on the first delivery).
    pub attempt: u32,
}

/// Why the provider could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer now; the same call may succeed later (the message is retried).
    #[error("the payment provider failed transiently: {0}")]
    Transient(&'static str),
    /// The authorization is not in a state that allows the operation (e.g. refund before
    /// capture): a bug or a manual change at the provider, never worth a blind retry.
    #[error("the provider refused to {operation} key {key}: {why}")]
    Refused {
        operation: &'static str,
        key: String,
        why: &'static str,
    },
    #[error("the payment provider is unreachable")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The payment provider, following the usual lifecycle: authorize (hold) → capture, void
/// before capture, refund after it. Every call is idempotent per key (the order id): a repeat
/// returns the first answer and moves no money.
pub trait PaymentProvider: Send + Sync {
    /// Authorizes `request.amount`, or declines it (a declined charge is an `Ok`).
    fn authorize(
        &self,
        request: &ChargeRequest,
    ) -> impl Future<Output = Result<ChargeOutcome, ProviderError>> + Send;

    /// Captures the authorized amount; returns the capture's reference.
    fn capture(
        &self,
        call: &ProviderCall,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;

    /// Releases the hold of an uncaptured authorization; returns the void's reference, or
    /// `None` when nothing was authorized with this key (nothing is held).
    fn void(
        &self,
        call: &ProviderCall,
    ) -> impl Future<Output = Result<Option<String>, ProviderError>> + Send;

    /// Refunds the captured amount; returns the refund's reference.
    fn refund(
        &self,
        call: &ProviderCall,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;
}

/// One operation the simulated provider performed: the answer it gave, kept per idempotency
/// key so that a repeat returns it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub key: String,
    pub operation: Operation,
    pub amount: Money,
    pub reference: String,
    /// Set on declined charges.
    pub decline_reason: Option<String>,
    /// The card token of a charge (the simulator decides later operations by it too).
    #[serde(default)]
    pub card_token: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

impl LedgerEntry {
    /// The answer a charge entry records.
    pub fn outcome(&self) -> ChargeOutcome {
        match &self.decline_reason {
            None => ChargeOutcome::Authorized {
                reference: self.reference.clone(),
            },
            Some(reason) => ChargeOutcome::Declined {
                reference: self.reference.clone(),
                reason: reason.clone(),
            },
        }
    }
}

/// The simulator's ledger (`CHARGE#<order id>` items of the payments table).
pub trait ChargeLedger: Send + Sync {
    fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> impl Future<Output = Result<Option<LedgerEntry>, RepositoryError>> + Send;

    /// Records `entry` unless one exists for its operation and key; returns the stored one
    /// (the first wins).
    fn record(
        &self,
        entry: &LedgerEntry,
    ) -> impl Future<Output = Result<LedgerEntry, RepositoryError>> + Send;
}

/// A shared store can serve as both the repository and the simulator's ledger.
impl<T: ChargeLedger> ChargeLedger for &T {
    async fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> Result<Option<LedgerEntry>, RepositoryError> {
        (**self).find(operation, key).await
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<LedgerEntry, RepositoryError> {
        (**self).record(entry).await
    }
}
