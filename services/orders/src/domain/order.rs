//! The order and its state machine: PENDING → CONFIRMED | CANCELLED, CONFIRMED → CANCELLED.

use chrono::{DateTime, Utc};
use kit::{
    events::{CancellationReason, Event, OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced},
    ids::{CustomerId, OrderId},
    money::Money,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::NewOrder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Confirmed,
    Cancelled,
}

impl Status {
    /// The name clients see, e.g. `CONFIRMED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

/// A transition the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an order that is {from:?}")]
pub struct TransitionError {
    pub action: &'static str,
    pub from: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub card_token: String,
    pub status: Status,
    pub cancellation_reason: Option<CancellationReason>,
    pub cancellation_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every saved change; writes are conditional on it.
    pub version: u64,
    /// The correlation id of the order's saga, so a change made outside it (the saga
    /// timeout) publishes its event in the same saga.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl Order {
    /// A new PENDING order and its OrderPlaced event.
    pub fn place(
        id: OrderId,
        customer_id: CustomerId,
        new: NewOrder,
        now: DateTime<Utc>,
    ) -> (Order, Event) {
        let order = Order {
            id,
            customer_id,
            lines: new.lines,
            total: new.total,
            card_token: new.card_token,
            status: Status::Pending,
            cancellation_reason: None,
            cancellation_detail: None,
            created_at: now,
            updated_at: now,
            version: 1,
            correlation_id: None,
        };
        let event = Event::OrderPlaced(OrderPlaced {
            order_id: order.id.to_string(),
            customer_id: order.customer_id.as_str().to_owned(),
            lines: order.lines.clone(),
            total: order.total,
            card_token: order.card_token.clone(),
            placed_at: now,
        });
        (order, event)
    }

    /// PENDING → CONFIRMED, once the payment is authorized.
    pub fn confirm(&mut self, now: DateTime<Utc>) -> Result<Event, TransitionError> {
        if self.status != Status::Pending {
            return Err(TransitionError {
                action: "confirm",
                from: self.status,
            });
        }
        self.status = Status::Confirmed;
        self.touch(now);
        Ok(Event::OrderConfirmed(OrderConfirmed {
            order_id: self.id.to_string(),
            customer_id: self.customer_id.as_str().to_owned(),
            total: self.total,
            confirmed_at: now,
        }))
    }

    /// PENDING or CONFIRMED → CANCELLED at the customer's request. Payments voids or refunds
    /// the payment when it sees the OrderCancelled event.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<Event, TransitionError> {
        self.close("cancel", &[Status::Pending, Status::Confirmed])?;
        Ok(self.cancelled(CancellationReason::CustomerRequested, None, now))
    }

    /// PENDING → CANCELLED because the payment was declined. Only a pending order's payment
    /// is in question: a decline never cancels a confirmed order.
    pub fn decline(
        &mut self,
        detail: String,
        now: DateTime<Utc>,
    ) -> Result<Event, TransitionError> {
        self.close("decline", &[Status::Pending])?;
        Ok(self.cancelled(CancellationReason::PaymentDeclined, Some(detail), now))
    }

    /// PENDING → CANCELLED because the payment did not settle within the saga timeout.
    /// Payments voids anything it may hold when it sees the OrderCancelled event.
    pub fn time_out(&mut self, now: DateTime<Utc>) -> Result<Event, TransitionError> {
        self.close("time out", &[Status::Pending])?;
        Ok(self.cancelled(CancellationReason::PaymentTimeout, None, now))
    }

    /// Whether a payment event names this order's customer and total (a forged or misrouted
    /// event does not).
    pub fn matches(&self, customer_id: &str, amount: Money) -> bool {
        self.customer_id.as_str() == customer_id && self.total == amount
    }

    fn close(&self, action: &'static str, from: &[Status]) -> Result<(), TransitionError> {
        if from.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError {
                action,
                from: self.status,
            })
        }
    }

    fn cancelled(
        &mut self,
        reason: CancellationReason,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Event {
        self.status = Status::Cancelled;
        self.cancellation_reason = Some(reason);
        self.cancellation_detail.clone_from(&detail);
        self.touch(now);
        Event::OrderCancelled(OrderCancelled {
            order_id: self.id.to_string(),
            customer_id: self.customer_id.as_str().to_owned(),
            total: self.total,
            reason,
            detail,
            cancelled_at: now,
        })
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use kit::money::Currency;

    use super::*;

    fn pending() -> Order {
        let eur = Currency::parse("EUR").unwrap();
        let new = NewOrder {
            lines: vec![OrderLine {
                sku: "A".into(),
                quantity: 1,
                unit_price: Money::new(100, eur).unwrap(),
            }],
            total: Money::new(100, eur).unwrap(),
            card_token: "tok_approve".into(),
        };
        Order::place(OrderId::generate(), CustomerId::new("c1"), new, Utc::now()).0
    }

    #[test]
    fn placing_emits_order_placed_with_the_total() {
        let order = pending();
        assert_eq!(order.status, Status::Pending);
        assert_eq!(order.version, 1);
    }

    #[test]
    fn a_pending_order_can_be_confirmed_once() {
        let mut order = pending();
        assert!(matches!(
            order.confirm(Utc::now()),
            Ok(Event::OrderConfirmed(_))
        ));
        assert_eq!(order.status, Status::Confirmed);
        assert_eq!(order.version, 2);
        assert_eq!(
            order.confirm(Utc::now()),
            Err(TransitionError {
                action: "confirm",
                from: Status::Confirmed
            })
        );
        assert_eq!(order.version, 2, "a refused transition changes nothing");
    }

    #[test]
    fn pending_and_confirmed_orders_can_be_cancelled_but_not_twice() {
        let mut order = pending();
        order.confirm(Utc::now()).unwrap();
        let Ok(Event::OrderCancelled(cancelled)) = order.cancel(Utc::now()) else {
            panic!("expected OrderCancelled")
        };
        assert_eq!(cancelled.reason, CancellationReason::CustomerRequested);
        assert!(order.cancel(Utc::now()).is_err());
        let mut other = pending();
        other
            .decline("insufficient funds".into(), Utc::now())
            .unwrap();
        assert_eq!(
            other.cancellation_detail.as_deref(),
            Some("insufficient funds")
        );
        assert_eq!(
            other.cancellation_reason,
            Some(CancellationReason::PaymentDeclined)
        );
    }

    #[test]
    fn a_cancelled_order_cannot_be_confirmed() {
        let mut order = pending();
        order.cancel(Utc::now()).unwrap();
        assert!(order.confirm(Utc::now()).is_err());
    }

    #[test]
    fn only_a_pending_order_can_be_declined_or_timed_out() {
        let mut confirmed = pending();
        confirmed.confirm(Utc::now()).unwrap();
        assert!(confirmed.decline("late".into(), Utc::now()).is_err());
        assert!(confirmed.time_out(Utc::now()).is_err());
        assert_eq!(confirmed.status, Status::Confirmed);

        let mut stuck = pending();
        let Ok(Event::OrderCancelled(cancelled)) = stuck.time_out(Utc::now()) else {
            panic!("expected OrderCancelled")
        };
        assert_eq!(cancelled.reason, CancellationReason::PaymentTimeout);
        assert_eq!(stuck.status, Status::Cancelled);
    }
}
