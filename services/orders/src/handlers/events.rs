//! The orders events function: payment outcomes move orders forward.
//! PaymentAuthorized → CONFIRMED + OrderConfirmed; PaymentDeclined → CANCELLED +
//! OrderCancelled, only for a PENDING order. Each event is applied once (a processed marker
//! commits with the change); an illegal transition is logged and acknowledged, never retried
//! forever. An event whose customer or amount does not match the order is refused (it is
//! retried, then lands in the DLQ where an alarm sees it), and changes nothing.

use chrono::Utc;
use kit::{
    events::{Envelope, Event},
    money::Money,
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
    #[error("the {event_type} of order {order_id} does not match the order (customer or amount)")]
    Mismatch {
        event_type: String,
        order_id: String,
    },
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
            let about = Payment::of(&paid.order_id, &paid.customer_id, paid.amount);
            transition(orders, &message.envelope, about, |order| {
                order.confirm(Utc::now())
            })
            .await
        }
        Event::PaymentDeclined(declined) => {
            let about = Payment::of(&declined.order_id, &declined.customer_id, declined.amount);
            transition(orders, &message.envelope, about, |order| {
                order.decline(declined.reason.clone(), Utc::now())
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

/// What a payment event says about an order.
struct Payment<'a> {
    order_id: &'a str,
    customer_id: &'a str,
    amount: Money,
}

impl<'a> Payment<'a> {
    fn of(order_id: &'a str, customer_id: &'a str, amount: Money) -> Self {
        Payment {
            order_id,
            customer_id,
            amount,
        }
    }
}

async fn transition<R, F>(
    orders: &R,
    cause: &Envelope,
    payment: Payment<'_>,
    apply: F,
) -> Result<(), ConsumerError>
where
    R: OrderRepository,
    F: Fn(&mut Order) -> Result<Event, TransitionError>,
{
    let order_id = payment.order_id;
    let id =
        OrderId::parse(order_id).ok_or_else(|| ConsumerError::UnknownOrder(order_id.to_owned()))?;
    let event_id = cause.id.to_string();
    for _ in 0..ATTEMPTS {
        let mut order = orders
            .get(&id)
            .await?
            .ok_or_else(|| ConsumerError::UnknownOrder(order_id.to_owned()))?;
        if !order.matches(payment.customer_id, payment.amount) {
            tracing::error!(order_id, event_type = %cause.event_type, "payment event does not match the order: refused");
            return Err(ConsumerError::Mismatch {
                event_type: cause.event_type.clone(),
                order_id: order_id.to_owned(),
            });
        }
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
