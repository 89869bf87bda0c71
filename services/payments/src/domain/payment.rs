//! A payment and its state machine, following the provider lifecycle. One payment per order:
//!
//! ```text
//!   OrderPlaced ─▶ AUTHORIZING ──authorize──▶ AUTHORIZED ──OrderConfirmed: capture──▶ CAPTURED
//!                      │             └───────▶ DECLINED             │                    │
//!                      └─OrderCancelled: void─▶ VOIDED ◀────────────┘   OrderCancelled: refund
//!   OrderCancelled first ─▶ CANCELLED (never charged)                                    ▼
//!                                                                                     REFUNDED
//! ```
//!
//! AUTHORIZING is written *before* the provider is asked, so a cancellation that arrives while
//! (or after) the provider authorizes always finds a payment to void: money is never held on a
//! cancelled order because a write was lost.

use chrono::{DateTime, Utc};
use kit::{
    events::{
        Event, OrderCancelled, OrderPlaced, PaymentAuthorized, PaymentDeclined, PaymentRefunded,
    },
    money::Money,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CustomerId, OrderId};

/// What the payment provider answered to an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOutcome {
    /// The amount is reserved (held); `reference` is the provider's id of the authorization.
    Authorized { reference: String },
    /// The provider refused the charge (a business outcome, not an error).
    Declined { reference: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The provider is being asked; it may or may not have authorized yet.
    Authorizing,
    /// The amount is held on the card.
    Authorized,
    Declined,
    /// The held amount was taken (the order is confirmed).
    Captured,
    /// The hold was released before capture (the order was cancelled).
    Voided,
    /// The captured amount was given back (a confirmed order was cancelled).
    Refunded,
    /// The order was cancelled before payments saw it; it will never be charged.
    Cancelled,
}

impl Status {
    /// The name clients see, e.g. `AUTHORIZED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Authorizing => "AUTHORIZING",
            Status::Authorized => "AUTHORIZED",
            Status::Declined => "DECLINED",
            Status::Captured => "CAPTURED",
            Status::Voided => "VOIDED",
            Status::Refunded => "REFUNDED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// Whether the order this payment belongs to was cancelled (no money may stay with us).
    pub fn is_cancelled(self) -> bool {
        matches!(self, Status::Voided | Status::Refunded | Status::Cancelled)
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
    /// The provider's id of the authorization, when there was one.
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
    /// The payment of a placed order, before the provider is asked (AUTHORIZING).
    pub fn authorizing(order_id: OrderId, placed: &OrderPlaced, now: DateTime<Utc>) -> Payment {
        Payment {
            payment_id: payment_id(&order_id),
            order_id,
            customer_id: CustomerId::new(&placed.customer_id),
            amount: placed.total,
            status: Status::Authorizing,
            provider_reference: None,
            decline_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The marker of an order cancelled before payments saw it (CANCELLED).
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

    /// AUTHORIZING → AUTHORIZED or DECLINED with the provider's answer, and its
    /// PaymentAuthorized or PaymentDeclined event.
    pub fn settle(
        &mut self,
        outcome: ChargeOutcome,
        now: DateTime<Utc>,
    ) -> Result<Event, TransitionError> {
        self.require("settle", &[Status::Authorizing])?;
        let (status, reference, reason) = match outcome {
            ChargeOutcome::Authorized { reference } => (Status::Authorized, reference, None),
            ChargeOutcome::Declined { reference, reason } => {
                (Status::Declined, reference, Some(reason))
            }
        };
        self.status = status;
        self.provider_reference = Some(reference);
        self.decline_reason.clone_from(&reason);
        self.touch(now);
        let (order_id, payment_id) = (self.order_id.to_string(), self.payment_id.clone());
        let customer_id = self.customer_id.as_str().to_owned();
        Ok(match reason {
            None => Event::PaymentAuthorized(PaymentAuthorized {
                order_id,
                payment_id,
                customer_id,
                amount: self.amount,
                authorized_at: now,
            }),
            Some(reason) => Event::PaymentDeclined(PaymentDeclined {
                order_id,
                payment_id,
                customer_id,
                amount: self.amount,
                reason,
                declined_at: now,
            }),
        })
    }

    /// AUTHORIZED → CAPTURED, once the provider captured the held amount.
    pub fn capture(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        self.require("capture", &[Status::Authorized])?;
        self.status = Status::Captured;
        self.touch(now);
        Ok(())
    }

    /// AUTHORIZING or AUTHORIZED → VOIDED, once the provider released any hold.
    pub fn void(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        self.require("void", &[Status::Authorizing, Status::Authorized])?;
        self.status = Status::Voided;
        self.touch(now);
        Ok(())
    }

    /// CAPTURED → REFUNDED, once the provider refunded the capture.
    pub fn refund(&mut self, now: DateTime<Utc>) -> Result<Event, TransitionError> {
        self.require("refund", &[Status::Captured])?;
        self.status = Status::Refunded;
        self.touch(now);
        Ok(Event::PaymentRefunded(PaymentRefunded {
            order_id: self.order_id.to_string(),
            payment_id: self.payment_id.clone(),
            customer_id: self.customer_id.as_str().to_owned(),
            amount: self.amount,
            refunded_at: now,
        }))
    }

    /// Whether an event about this payment's order names the same customer and amount (a
    /// forged or misrouted event does not).
    pub fn matches(&self, customer_id: &str, amount: Money) -> bool {
        self.customer_id.as_str() == customer_id && self.amount == amount
    }

    fn require(&self, action: &'static str, from: &[Status]) -> Result<(), TransitionError> {
        if from.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError {
                action,
                from: self.status,
            })
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
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

    fn authorizing() -> Payment {
        let id = OrderId::generate();
        Payment::authorizing(id.clone(), &placed(&id), Utc::now())
    }

    fn authorized() -> Payment {
        let mut payment = authorizing();
        let outcome = ChargeOutcome::Authorized {
            reference: "sim_1".into(),
        };
        payment.settle(outcome, Utc::now()).unwrap();
        payment
    }

    #[test]
    fn an_authorized_answer_settles_the_payment_as_authorized_with_its_event() {
        let mut payment = authorizing();
        assert_eq!(payment.status, Status::Authorizing);
        assert_eq!(payment.provider_reference, None);
        let outcome = ChargeOutcome::Authorized {
            reference: "sim_1".into(),
        };
        let event = payment.settle(outcome, Utc::now()).unwrap();
        assert_eq!(payment.status, Status::Authorized);
        assert_eq!(payment.amount, eur(2599));
        assert_eq!(payment.provider_reference.as_deref(), Some("sim_1"));
        assert_eq!(payment.version, 2);
        let Event::PaymentAuthorized(event) = event else {
            panic!("expected PaymentAuthorized, got {event:?}")
        };
        assert_eq!(event.order_id, payment.order_id.as_str());
        assert_eq!(event.payment_id, payment.payment_id);
        assert_eq!(event.amount, eur(2599));
    }

    #[test]
    fn a_declined_answer_keeps_the_reason_in_the_payment_and_the_event() {
        let mut payment = authorizing();
        let outcome = ChargeOutcome::Declined {
            reference: "sim_2".into(),
            reason: "insufficient_funds".into(),
        };
        let event = payment.settle(outcome, Utc::now()).unwrap();
        assert_eq!(payment.status, Status::Declined);
        assert_eq!(
            payment.decline_reason.as_deref(),
            Some("insufficient_funds")
        );
        assert!(matches!(event, Event::PaymentDeclined(d) if d.reason == "insufficient_funds"));
    }

    #[test]
    fn an_authorized_payment_is_captured_once_then_refunded_once() {
        let mut payment = authorized();
        payment.capture(Utc::now()).unwrap();
        assert_eq!(payment.status, Status::Captured);
        assert!(payment.capture(Utc::now()).is_err());
        let Ok(Event::PaymentRefunded(refunded)) = payment.refund(Utc::now()) else {
            panic!("expected PaymentRefunded")
        };
        assert_eq!(refunded.amount, eur(2599));
        assert_eq!(payment.status, Status::Refunded);
        assert_eq!(payment.version, 4);
        assert_eq!(
            payment.refund(Utc::now()),
            Err(TransitionError {
                action: "refund",
                from: Status::Refunded
            })
        );
        assert_eq!(payment.version, 4, "a refused transition changes nothing");
    }

    #[test]
    fn only_an_uncaptured_payment_can_be_voided_and_a_voided_one_is_final() {
        let mut pending = authorizing();
        pending.void(Utc::now()).unwrap();
        assert_eq!(pending.status, Status::Voided);
        let mut held = authorized();
        held.void(Utc::now()).unwrap();
        assert!(
            held.capture(Utc::now()).is_err(),
            "a voided hold cannot be captured"
        );
        assert!(held.refund(Utc::now()).is_err());
        let mut captured = authorized();
        captured.capture(Utc::now()).unwrap();
        assert!(
            captured.void(Utc::now()).is_err(),
            "a capture is refunded, not voided"
        );
    }

    #[test]
    fn an_authorized_payment_cannot_be_refunded_before_it_is_captured() {
        assert!(authorized().refund(Utc::now()).is_err());
    }

    #[test]
    fn a_cancelled_marker_is_never_charged_or_refunded() {
        let id = OrderId::generate();
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
        assert!(marker.status.is_cancelled());
        let outcome = ChargeOutcome::Authorized {
            reference: "r".into(),
        };
        assert!(marker.settle(outcome, Utc::now()).is_err());
        assert!(marker.refund(Utc::now()).is_err());
        assert!(marker.void(Utc::now()).is_err());
    }

    #[test]
    fn an_event_matches_a_payment_only_with_the_same_customer_and_amount() {
        let payment = authorized();
        assert!(payment.matches("c1", eur(2599)));
        assert!(!payment.matches("c2", eur(2599)));
        assert!(!payment.matches("c1", eur(1)));
    }

    #[test]
    fn the_payment_id_is_the_same_for_every_retry_of_one_order() {
        let id = OrderId::parse("0190a0e0-0000-7000-8000-000000000001").unwrap();
        assert_eq!(payment_id(&id), "pay_0190a0e0000070008000000000000001");
    }
}
