//! The orders events function: payment outcomes move orders forward.
//! PaymentAuthorized → CONFIRMED + OrderConfirmed; PaymentDeclined → CANCELLED +
//! OrderCancelled. Each event is applied once (a processed marker commits with the change);
//! an illegal transition is logged and acknowledged, never retried forever.

use chrono::Utc;
use kit::{
    events::{CancellationReason, Envelope, Event},
    sqs::Message,
};

use crate::{
    EVENT_SOURCE,
    domain::{Order, OrderId, TransitionError},
    ports::{OrderRepository, RepositoryError},
};

/// Attempts of a transition that races with another change of the same order.
const ATTEMPTS: usize = 3;

/// Why a message must be retried (it becomes a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("order {0} does not exist")]
    UnknownOrder(String),
    #[error("order {0} kept changing while applying the event")]
    Contention(String),
    #[error("cannot build the outgoing event")]
    Contract(#[from] kit::events::ContractError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles one message of the orders queue.
pub async fn handle<R: OrderRepository>(orders: &R, message: Message) -> Result<(), ConsumerError> {
    let event_id = message.envelope.id.to_string();
    if orders.is_processed(&event_id).await? {
        tracing::info!(event_id, "duplicate delivery: already processed");
        return Ok(());
    }
    match &message.event {
        Event::PaymentAuthorized(paid) => {
            transition(orders, &message.envelope, &paid.order_id, |order| {
                order.confirm(Utc::now())
            })
            .await
        }
        Event::PaymentDeclined(declined) => {
            transition(orders, &message.envelope, &declined.order_id, |order| {
                order.cancel(
                    CancellationReason::PaymentDeclined,
                    Some(declined.reason.clone()),
                    Utc::now(),
                )
            })
            .await
        }
        other => {
            tracing::warn!(
                event_type = other.event_type(),
                "event not for orders: acknowledged"
            );
            Ok(())
        }
    }
}

async fn transition<R, F>(
    orders: &R,
    cause: &Envelope,
    order_id: &str,
    apply: F,
) -> Result<(), ConsumerError>
where
    R: OrderRepository,
    F: Fn(&mut Order) -> Result<Event, TransitionError>,
{
    let id =
        OrderId::parse(order_id).ok_or_else(|| ConsumerError::UnknownOrder(order_id.to_owned()))?;
    let event_id = cause.id.to_string();
    for _ in 0..ATTEMPTS {
        let mut order = orders
            .get(&id)
            .await?
            .ok_or_else(|| ConsumerError::UnknownOrder(order_id.to_owned()))?;
        let expected = order.version;
        let event = match apply(&mut order) {
            Ok(event) => event,
            Err(illegal) => {
                tracing::warn!(order_id, event_type = %cause.event_type, error = %illegal, "illegal transition: acknowledged without change");
                return Ok(());
            }
        };
        let outgoing = cause.follow_up(EVENT_SOURCE, &event, Utc::now())?;
        match orders
            .update(&order, expected, &[outgoing], Some(&event_id))
            .await
        {
            Ok(()) => {
                tracing::info!(order_id, status = order.status.as_str(), "order updated");
                return Ok(());
            }
            Err(RepositoryError::AlreadyProcessed) => {
                tracing::info!(event_id, "duplicate delivery: already processed");
                return Ok(());
            }
            Err(RepositoryError::VersionConflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ConsumerError::Contention(order_id.to_owned()))
}
