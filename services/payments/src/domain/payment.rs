//! A payment and its state machine. One payment per order, created by the first of:
//! - OrderPlaced → charged: AUTHORIZED or DECLINED;
//! - OrderCancelled before any charge → CANCELLED (a marker: a later OrderPlaced is not charged).
//!
//! Then AUTHORIZED → REFUNDED when the order is cancelled; every other state is final.

use chrono::{DateTime, Utc};
use kit::{
    events::{
        Event, OrderCancelled, OrderPlaced, PaymentAuthorized, PaymentDeclined, PaymentRefunded,
    },
    money::Money,
};
use serde::{Deserialize, Serialize};

use super::{CustomerId, OrderId};

/// What the payment provider answered to a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOutcome {
    /// The amount is reserved; `reference` is the provider's id of the charge.
    Authorized { reference: String },
    /// The provider refused the charge (a business outcome, not an error).
    Declined { reference: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Authorized,
    Declined,
    Refunded,
    /// The order was cancelled before it was charged; it never will be.
    Cancelled,
}

impl Status {
    /// The name clients see, e.g. `AUTHORIZED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Authorized => "AUTHORIZED",
            Status::Declined => "DECLINED",
            Status::Refunded => "REFUNDED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

/// A transition the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a payment that is {}", from.as_str())]
pub struct TransitionError {
    pub action: &'static str,
    pub from: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub order_id: OrderId,
    /// Ours, derived from the order id (one payment per order), so every retry names it alike.
    pub payment_id: String,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub status: Status,
    /// The provider's id of the charge, when there was one.
    pub provider_reference: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every saved change; writes are conditional on it.
    pub version: u64,
}

/// The payment id of an order's payment.
pub fn payment_id(order_id: &OrderId) -> String {
    format!("pay_{}", order_id.as_str().replace('-', ""))
}

impl Payment {
    /// The payment of a charged order, and its PaymentAuthorized or PaymentDeclined event.
    pub fn charged(
        order_id: OrderId,
        placed: &OrderPlaced,
        outcome: ChargeOutcome,
        now: DateTime<Utc>,
    ) -> (Payment, Event) {
        let (status, reference, reason) = match outcome {
            ChargeOutcome::Authorized { reference } => (Status::Authorized, reference, None),
            ChargeOutcome::Declined { reference, reason } => {
                (Status::Declined, reference, Some(reason))
            }
        };
        let payment = Payment {
            payment_id: payment_id(&order_id),
            order_id,
            customer_id: CustomerId::new(&placed.customer_id),
            amount: placed.total,
            status,
            provider_reference: Some(reference),
            decline_reason: reason.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let event = match reason {
            None => Event::PaymentAuthorized(PaymentAuthorized {
                order_id: payment.order_id.to_string(),
                payment_id: payment.payment_id.clone(),
                customer_id: placed.customer_id.clone(),
                amount: payment.amount,
                authorized_at: now,
            }),
            Some(reason) => Event::PaymentDeclined(PaymentDeclined {
                order_id: payment.order_id.to_string(),
                payment_id: payment.payment_id.clone(),
                customer_id: placed.customer_id.clone(),
                amount: payment.amount,
                reason,
                declined_at: now,
            }),
        };
        (payment, event)
    }

    /// The marker of an order cancelled before payments charged it.
    pub fn cancelled_before_charge(
        order_id: OrderId,
        cancelled: &OrderCancelled,
        now: DateTime<Utc>,
    ) -> Payment {
        Payment {
            payment_id: payment_id(&order_id),
            order_id,
            customer_id: CustomerId::new(&cancelled.customer_id),
            amount: cancelled.total,
            status: Status::Cancelled,
            provider_reference: None,
            decline_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// AUTHORIZED → REFUNDED, once the provider refunded the charge.
    pub fn refund(&mut self, now: DateTime<Utc>) -> Result<Event, TransitionError> {
        if self.status != Status::Authorized {
            return Err(TransitionError {
                action: "refund",
                from: self.status,
            });
        }
        self.status = Status::Refunded;
        self.updated_at = now;
        self.version += 1;
        Ok(Event::PaymentRefunded(PaymentRefunded {
            order_id: self.order_id.to_string(),
            payment_id: self.payment_id.clone(),
            customer_id: self.customer_id.as_str().to_owned(),
            amount: self.amount,
            refunded_at: now,
        }))
    }
}

#[cfg(test)]
mod tests {
    use kit::{events::CancellationReason, money::Currency};

    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn placed(order_id: &OrderId) -> OrderPlaced {
        OrderPlaced {
            order_id: order_id.to_string(),
            customer_id: "c1".into(),
            lines: vec![],
            total: eur(2599),
            card_token: "tok_approve".into(),
            placed_at: Utc::now(),
        }
    }

    fn authorized() -> Payment {
        let id = OrderId::generate();
        let outcome = ChargeOutcome::Authorized {
            reference: "sim_1".into(),
        };
        Payment::charged(id.clone(), &placed(&id), outcome, Utc::now()).0
    }

    #[test]
    fn an_authorized_charge_makes_an_authorized_payment_and_its_event() {
        let id = OrderId::generate();
        let outcome = ChargeOutcome::Authorized {
            reference: "sim_1".into(),
        };
        let (payment, event) = Payment::charged(id.clone(), &placed(&id), outcome, Utc::now());
        assert_eq!(payment.status, Status::Authorized);
        assert_eq!(payment.amount, eur(2599));
        assert_eq!(payment.provider_reference.as_deref(), Some("sim_1"));
        let Event::PaymentAuthorized(event) = event else {
            panic!("expected PaymentAuthorized, got {event:?}")
        };
        assert_eq!(event.order_id, id.as_str());
        assert_eq!(event.payment_id, payment.payment_id);
        assert_eq!(event.amount, eur(2599));
    }

    #[test]
    fn a_declined_charge_keeps_the_reason_in_the_payment_and_the_event() {
        let id = OrderId::generate();
        let outcome = ChargeOutcome::Declined {
            reference: "sim_2".into(),
            reason: "insufficient_funds".into(),
        };
        let (payment, event) = Payment::charged(id.clone(), &placed(&id), outcome, Utc::now());
        assert_eq!(payment.status, Status::Declined);
        assert_eq!(
            payment.decline_reason.as_deref(),
            Some("insufficient_funds")
        );
        assert!(matches!(event, Event::PaymentDeclined(d) if d.reason == "insufficient_funds"));
    }

    #[test]
    fn an_authorized_payment_can_be_refunded_once() {
        let mut payment = authorized();
        let Ok(Event::PaymentRefunded(refunded)) = payment.refund(Utc::now()) else {
            panic!("expected PaymentRefunded")
        };
        assert_eq!(refunded.amount, eur(2599));
        assert_eq!(payment.status, Status::Refunded);
        assert_eq!(payment.version, 2);
        assert_eq!(
            payment.refund(Utc::now()),
            Err(TransitionError {
                action: "refund",
                from: Status::Refunded
            })
        );
        assert_eq!(payment.version, 2, "a refused transition changes nothing");
    }

    #[test]
    fn declined_and_cancelled_payments_cannot_be_refunded() {
        let id = OrderId::generate();
        let declined = ChargeOutcome::Declined {
            reference: "r".into(),
            reason: "x".into(),
        };
        let mut payment = Payment::charged(id.clone(), &placed(&id), declined, Utc::now()).0;
        assert!(payment.refund(Utc::now()).is_err());

        let cancelled = OrderCancelled {
            order_id: id.to_string(),
            customer_id: "c1".into(),
            total: eur(10),
            reason: CancellationReason::CustomerRequested,
            detail: None,
            cancelled_at: Utc::now(),
        };
        let mut marker = Payment::cancelled_before_charge(id, &cancelled, Utc::now());
        assert_eq!(marker.status, Status::Cancelled);
        assert_eq!(marker.provider_reference, None);
        assert!(marker.refund(Utc::now()).is_err());
    }

    #[test]
    fn the_payment_id_is_the_same_for_every_retry_of_one_order() {
        let id = OrderId::parse("0190a0e0-0000-7000-8000-000000000001").unwrap();
        assert_eq!(payment_id(&id), "pay_0190a0e0000070008000000000000001");
    }
}
