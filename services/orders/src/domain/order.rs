//! The order and its state machine: PENDING → CONFIRMED | CANCELLED, CONFIRMED → CANCELLED.

use chrono::{DateTime, Utc};
use kit::{
    events::{CancellationReason, Event, OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced},
    ids::{CustomerId, OrderId},
    money::Money,
};
use serde::{Deserialize, Serialize};

use super::NewOrder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// PENDING or CONFIRMED → CANCELLED. A confirmed order's payment gets refunded by
    /// payments when it sees the OrderCancelled event.
    pub fn cancel(
        &mut self,
        reason: CancellationReason,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Event, TransitionError> {
        if self.status == Status::Cancelled {
            return Err(TransitionError {
                action: "cancel",
                from: self.status,
            });
        }
        self.status = Status::Cancelled;
        self.cancellation_reason = Some(reason);
        self.cancellation_detail.clone_from(&detail);
        self.touch(now);
        Ok(Event::OrderCancelled(OrderCancelled {
            order_id: self.id.to_string(),
            customer_id: self.customer_id.as_str().to_owned(),
            total: self.total,
            reason,
            detail,
            cancelled_at: now,
        }))
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
        let Ok(Event::OrderCancelled(cancelled)) =
            order.cancel(CancellationReason::CustomerRequested, None, Utc::now())
        else {
            panic!("expected OrderCancelled")
        };
        assert_eq!(cancelled.reason, CancellationReason::CustomerRequested);
        assert!(
            order
                .cancel(CancellationReason::CustomerRequested, None, Utc::now())
                .is_err()
        );
        let mut other = pending();
        other
            .cancel(
                CancellationReason::PaymentDeclined,
                Some("insufficient funds".into()),
                Utc::now(),
            )
            .unwrap();
        assert_eq!(
            other.cancellation_detail.as_deref(),
            Some("insufficient funds")
        );
    }

    #[test]
    fn a_cancelled_order_cannot_be_confirmed() {
        let mut order = pending();
        order
            .cancel(CancellationReason::CustomerRequested, None, Utc::now())
            .unwrap();
        assert!(order.confirm(Utc::now()).is_err());
    }
}
