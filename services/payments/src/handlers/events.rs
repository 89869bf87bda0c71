//! The payments events function, following the provider lifecycle (see [`crate::domain`]):
//! - OrderPlaced → the payment is stored as AUTHORIZING *before* the provider is asked, then
//!   settled as AUTHORIZED + PaymentAuthorized or DECLINED + PaymentDeclined;
//! - OrderConfirmed → the hold is captured (CAPTURED);
//! - OrderCancelled → the hold is voided (VOIDED) or the capture refunded (REFUNDED +
//!   PaymentRefunded); with no payment yet, a CANCELLED marker stops a late OrderPlaced.
//!
//! Whatever interleaving of deliveries, redeliveries and lost writes: a payment whose order was
//! cancelled never keeps a hold, because the cancellation always finds the AUTHORIZING payment
//! and voids it, and an authorization that lands after the cancellation is voided by the
//! OrderPlaced delivery that made it.
//!
//! Each event is applied once (a processed marker commits with the change). A transient
//! provider failure is an error: the message is retried by SQS and, past the queue's
//! maxReceiveCount, lands in the DLQ. A decline is a business outcome, not an error. An event
//! whose customer or amount does not match the payment is refused (it ends in the DLQ).

use chrono::Utc;
use kit::telemetry::Step as _;
use kit::{
    events::{Envelope, Event, OrderCancelled, OrderConfirmed, OrderPlaced},
    metrics::{self, Metric},
    sqs::Message,
};

use crate::{
    EVENT_SOURCE, SERVICE,
    domain::{OrderId, Payment, Status},
    ports::{
        ChargeRequest, PaymentProvider, PaymentRepository, ProviderCall, ProviderError,
        RepositoryError,
    },
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
    #[error("order {0} has no payment to capture")]
    NoPayment(String),
    #[error("the {event_type} of order {order_id} does not match its payment (customer or amount)")]
    Mismatch {
        event_type: String,
        order_id: String,
    },
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
    let step = Step {
        payments,
        provider,
        cause: &message.envelope,
        attempt: message.receive_count,
    };
    match &message.event {
        Event::OrderPlaced(placed) => step.authorize(placed).await,
        Event::OrderConfirmed(confirmed) => step.capture(confirmed).await,
        Event::OrderCancelled(cancelled) => step.cancel(cancelled).await,
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

/// One event being applied to one payment.
struct Step<'a, R, P> {
    payments: &'a R,
    provider: &'a P,
    cause: &'a Envelope,
    attempt: u32,
}

/// What a write's outcome means for the loop around it.
enum Written {
    Done,
    Retry,
}

impl<R: PaymentRepository, P: PaymentProvider> Step<'_, R, P> {
    fn event_id(&self) -> String {
        self.cause.id.to_string()
    }

    fn call(&self, payment: &Payment) -> ProviderCall {
        ProviderCall {
            idempotency_key: payment.order_id.to_string(),
            amount: payment.amount,
            attempt: self.attempt,
        }
    }

    /// The envelope of `event`, caused by this step's event, in the same saga.
    fn envelope(&self, event: &Event) -> Result<Envelope, ConsumerError> {
        Ok(self.cause.follow_up(EVENT_SOURCE, event, Utc::now())?)
    }

    fn mismatch(&self, order_id: &OrderId) -> ConsumerError {
        tracing::error!(order_id = %order_id, event_type = %self.cause.event_type, source = %self.cause.source, "event does not match the stored payment: refused");
        ConsumerError::Mismatch {
            event_type: self.cause.event_type.clone(),
            order_id: order_id.to_string(),
        }
    }

    /// What a write returned: done (also when the event was already applied), retry on a
    /// concurrent change, or the error.
    fn written(&self, result: Result<(), RepositoryError>) -> Result<Written, ConsumerError> {
        match result {
            Ok(()) => Ok(Written::Done),
            Err(RepositoryError::AlreadyProcessed) => {
                tracing::info!(event_id = %self.cause.id, "duplicate delivery: already processed");
                Ok(Written::Done)
            }
            Err(RepositoryError::PaymentExists | RepositoryError::VersionConflict) => {
                Ok(Written::Retry)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// OrderPlaced: AUTHORIZING first, then the provider, then AUTHORIZED or DECLINED.
    async fn authorize(&self, placed: &OrderPlaced) -> Result<(), ConsumerError> {
        let id = order_id(&placed.order_id)?;
        for _ in 0..ATTEMPTS {
            let payment = match self.payments.get(&id).await? {
                None => {
                    let intent = Payment::authorizing(id.clone(), placed, Utc::now());
                    match self.written(self.payments.insert(&intent, &[], None).await)? {
                        Written::Done => intent,
                        Written::Retry => continue,
                    }
                }
                Some(payment) if payment.status == Status::Authorizing => payment,
                Some(payment) if payment.status.is_cancelled() => {
                    // Cancelled while (or before) we asked the provider: release anything the
                    // provider may hold for it. A no-op when nothing was authorized.
                    return self.release(&payment).await;
                }
                Some(payment) => {
                    tracing::info!(order_id = %id, status = payment.status.as_str(), "the order already has a payment: not charged again");
                    return Ok(());
                }
            };
            if !payment.matches(&placed.customer_id, placed.total) {
                return Err(self.mismatch(&id));
            }
            let request = ChargeRequest {
                idempotency_key: id.to_string(),
                amount: payment.amount,
                card_token: placed.card_token.clone(),
                attempt: self.attempt,
            };
            let outcome = self
                .provider
                .authorize(&request)
                .step("provider.authorize")
                .await?;
            let mut settled = payment.clone();
            let Ok(event) = settled.settle(outcome, Utc::now()) else {
                continue;
            };
            let outgoing = self.envelope(&event)?;
            let event_id = self.event_id();
            let result = self
                .payments
                .update(&settled, payment.version, &[outgoing], Some(&event_id))
                .await;
            match self.written(result)? {
                Written::Done => {
                    tracing::info!(order_id = %id, status = settled.status.as_str(), "payment settled");
                    metrics::emit(SERVICE, &[], &[Metric::count(event.event_type(), 1)]);
                    return Ok(());
                }
                // Read again: if the order was cancelled meanwhile, the next turn voids.
                Written::Retry => continue,
            }
        }
        Err(ConsumerError::Contention(id.to_string()))
    }

    /// Voids whatever the provider may hold for a payment whose order was cancelled.
    async fn release(&self, payment: &Payment) -> Result<(), ConsumerError> {
        if payment.status == Status::Refunded {
            return Ok(());
        }
        if let Some(reference) = self
            .provider
            .void(&self.call(payment))
            .step("provider.void")
            .await?
        {
            tracing::warn!(order_id = %payment.order_id, reference, "an authorization made for a cancelled order was voided");
        }
        Ok(())
    }

    /// OrderConfirmed: AUTHORIZED → CAPTURED.
    async fn capture(&self, confirmed: &OrderConfirmed) -> Result<(), ConsumerError> {
        let id = order_id(&confirmed.order_id)?;
        for _ in 0..ATTEMPTS {
            let Some(payment) = self.payments.get(&id).await? else {
                return Err(ConsumerError::NoPayment(id.to_string()));
            };
            if !payment.matches(&confirmed.customer_id, confirmed.total) {
                return Err(self.mismatch(&id));
            }
            let expected = payment.version;
            let mut captured = payment.clone();
            if let Err(illegal) = captured.capture(Utc::now()) {
                tracing::warn!(order_id = %id, error = %illegal, "not captured: acknowledged without change");
                return Ok(());
            }
            let reference = self
                .provider
                .capture(&self.call(&payment))
                .step("provider.capture")
                .await?;
            let event_id = self.event_id();
            let result = self
                .payments
                .update(&captured, expected, &[], Some(&event_id))
                .await;
            if let Written::Done = self.written(result)? {
                tracing::info!(order_id = %id, reference, "payment captured");
                metrics::emit(SERVICE, &[], &[Metric::count("PaymentCaptured", 1)]);
                return Ok(());
            }
        }
        Err(ConsumerError::Contention(id.to_string()))
    }

    /// OrderCancelled: no payment → CANCELLED marker; AUTHORIZING/AUTHORIZED → VOIDED;
    /// CAPTURED → REFUNDED + PaymentRefunded; anything else holds no money.
    async fn cancel(&self, cancelled: &OrderCancelled) -> Result<(), ConsumerError> {
        let id = order_id(&cancelled.order_id)?;
        let event_id = self.event_id();
        for _ in 0..ATTEMPTS {
            let result = match self.payments.get(&id).await? {
                None => {
                    let marker =
                        Payment::cancelled_before_charge(id.clone(), cancelled, Utc::now());
                    self.payments.insert(&marker, &[], Some(&event_id)).await
                }
                Some(payment) if !payment.matches(&cancelled.customer_id, cancelled.total) => {
                    return Err(self.mismatch(&id));
                }
                Some(payment) => {
                    let expected = payment.version;
                    let mut changed = payment.clone();
                    let events = match payment.status {
                        Status::Authorizing | Status::Authorized => {
                            self.release(&payment).await?;
                            changed.void(Utc::now()).map(|()| Vec::new())
                        }
                        Status::Captured => {
                            self.provider
                                .refund(&self.call(&payment))
                                .step("provider.refund")
                                .await?;
                            changed.refund(Utc::now()).map(|event| vec![event])
                        }
                        Status::Declined
                        | Status::Voided
                        | Status::Refunded
                        | Status::Cancelled => {
                            tracing::info!(order_id = %id, status = payment.status.as_str(), "nothing held: acknowledged");
                            return Ok(());
                        }
                    };
                    let Ok(events) = events else { continue };
                    let outgoing = events
                        .iter()
                        .map(|event| self.envelope(event))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.payments
                        .update(&changed, expected, &outgoing, Some(&event_id))
                        .await
                }
            };
            if let Written::Done = self.written(result)? {
                tracing::info!(order_id = %id, "order cancellation applied");
                return Ok(());
            }
        }
        Err(ConsumerError::Contention(id.to_string()))
    }
}
