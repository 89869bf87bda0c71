//! The payments events function.
//! - OrderPlaced → charge through the provider (idempotency key = order id) → AUTHORIZED +
//!   PaymentAuthorized, or DECLINED + PaymentDeclined. An order that already has a payment (or
//!   a cancelled marker) is never charged again.
//! - OrderCancelled → an AUTHORIZED payment is refunded (REFUNDED + PaymentRefunded); with no
//!   payment yet, a CANCELLED marker is stored so a late OrderPlaced is not charged.
//!
//! Each event is applied once (a processed marker commits with the change). A transient
//! provider failure is an error: the message is retried by SQS and, past the queue's
//! maxReceiveCount, lands in the DLQ. A decline is a business outcome, not an error.

use chrono::Utc;
use kit::{
    events::{Envelope, Event, OrderCancelled, OrderPlaced},
    metrics::{self, Metric},
    sqs::Message,
};

use crate::{
    EVENT_SOURCE, SERVICE,
    domain::{OrderId, Payment, Status},
    ports::{ChargeRequest, PaymentProvider, PaymentRepository, ProviderError, RepositoryError},
};

/// Attempts of a change that races with another change of the same payment.
const ATTEMPTS: usize = 3;

/// Why a message must be retried (it becomes a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("`{0}` is not an order id")]
    InvalidOrderId(String),
    #[error("the payment of order {0} kept changing while applying the event")]
    Contention(String),
    #[error("cannot build the outgoing event")]
    Contract(#[from] kit::events::ContractError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles one message of the payments queue.
pub async fn handle<R, P>(payments: &R, provider: &P, message: Message) -> Result<(), ConsumerError>
where
    R: PaymentRepository,
    P: PaymentProvider,
{
    let event_id = message.envelope.id.to_string();
    if payments.is_processed(&event_id).await? {
        tracing::info!(event_id, "duplicate delivery: already processed");
        return Ok(());
    }
    match &message.event {
        Event::OrderPlaced(placed) => charge(payments, provider, &message, placed).await,
        Event::OrderCancelled(cancelled) => {
            cancel(payments, provider, &message.envelope, cancelled).await
        }
        other => {
            tracing::warn!(
                event_type = other.event_type(),
                "event not for payments: acknowledged"
            );
            Ok(())
        }
    }
}

fn order_id(raw: &str) -> Result<OrderId, ConsumerError> {
    OrderId::parse(raw).ok_or_else(|| ConsumerError::InvalidOrderId(raw.to_owned()))
}

/// The envelope of `event`, caused by `cause`, in the same saga (correlation id).
fn envelope(cause: &Envelope, event: &Event) -> Result<Envelope, ConsumerError> {
    Ok(cause.follow_up(EVENT_SOURCE, event, Utc::now())?)
}

async fn charge<R, P>(
    payments: &R,
    provider: &P,
    message: &Message,
    placed: &OrderPlaced,
) -> Result<(), ConsumerError>
where
    R: PaymentRepository,
    P: PaymentProvider,
{
    let id = order_id(&placed.order_id)?;
    if let Some(existing) = payments.get(&id).await? {
        tracing::info!(order_id = %id, status = existing.status.as_str(), "the order already has a payment: not charged again");
        return Ok(());
    }
    let request = ChargeRequest {
        idempotency_key: id.to_string(),
        amount: placed.total,
        card_token: placed.card_token.clone(),
        attempt: message.receive_count,
    };
    let outcome = provider.charge(&request).await?;
    let (payment, event) = Payment::charged(id.clone(), placed, outcome, Utc::now());
    let outgoing = envelope(&message.envelope, &event)?;
    let event_id = message.envelope.id.to_string();
    match payments.insert(&payment, &[outgoing], &event_id).await {
        Ok(()) => {
            tracing::info!(order_id = %id, status = payment.status.as_str(), "payment recorded");
            metrics::emit(SERVICE, &[], &[Metric::count(event.event_type(), 1)]);
            Ok(())
        }
        Err(RepositoryError::AlreadyProcessed) => {
            tracing::info!(event_id, "duplicate delivery: already processed");
            Ok(())
        }
        Err(RepositoryError::PaymentExists) => {
            // Another delivery, or an OrderCancelled, got there first.
            let existing = payments.get(&id).await?;
            if payment.status == Status::Authorized
                && existing.as_ref().map(|p| p.status) == Some(Status::Cancelled)
            {
                let reference = provider.refund(id.as_str(), payment.amount).await?;
                tracing::warn!(order_id = %id, reference, "the order was cancelled while it was charged: the charge is refunded");
            } else {
                tracing::info!(order_id = %id, "the order already has a payment: not recorded again");
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

async fn cancel<R, P>(
    payments: &R,
    provider: &P,
    cause: &Envelope,
    cancelled: &OrderCancelled,
) -> Result<(), ConsumerError>
where
    R: PaymentRepository,
    P: PaymentProvider,
{
    let id = order_id(&cancelled.order_id)?;
    let event_id = cause.id.to_string();
    for _ in 0..ATTEMPTS {
        let result = match payments.get(&id).await? {
            None => {
                let marker = Payment::cancelled_before_charge(id.clone(), cancelled, Utc::now());
                payments.insert(&marker, &[], &event_id).await
            }
            Some(mut payment) => {
                let expected = payment.version;
                let event = match payment.refund(Utc::now()) {
                    Ok(event) => event,
                    Err(nothing) => {
                        tracing::info!(order_id = %id, reason = %nothing, "nothing to refund: acknowledged");
                        return Ok(());
                    }
                };
                provider.refund(id.as_str(), payment.amount).await?;
                let outgoing = envelope(cause, &event)?;
                payments
                    .update(&payment, expected, &[outgoing], &event_id)
                    .await
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(order_id = %id, "order cancellation applied");
                return Ok(());
            }
            Err(RepositoryError::AlreadyProcessed) => {
                tracing::info!(event_id, "duplicate delivery: already processed");
                return Ok(());
            }
            Err(RepositoryError::PaymentExists | RepositoryError::VersionConflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ConsumerError::Contention(id.to_string()))
}
