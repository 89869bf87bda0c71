//! One plain-text template per event a customer hears about, rendered from the event's data.

use kit::events::{CancellationReason, Event, OrderCancelled, OrderConfirmed, PaymentRefunded};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CustomerId;

/// The templates, named in records and logs by [`Template::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    OrderConfirmed,
    OrderCancelled,
    PaymentRefunded,
}

impl Template {
    /// The template's name, e.g. `order-confirmed`.
    pub fn name(self) -> &'static str {
        match self {
            Template::OrderConfirmed => "order-confirmed",
            Template::OrderCancelled => "order-cancelled",
            Template::PaymentRefunded => "payment-refunded",
        }
    }

    /// The event type the template is for.
    pub fn about(self) -> &'static str {
        match self {
            Template::OrderConfirmed => "OrderConfirmed",
            Template::OrderCancelled => "OrderCancelled",
            Template::PaymentRefunded => "PaymentRefunded",
        }
    }
}

/// A rendered message, not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub customer_id: CustomerId,
    pub order_id: String,
    pub template: Template,
    pub subject: String,
    pub body: String,
}

/// The message a customer gets for `event`; `None` for events customers are not told about.
pub fn compose(event: &Event) -> Option<Draft> {
    match event {
        Event::OrderConfirmed(confirmed) => Some(order_confirmed(confirmed)),
        Event::OrderCancelled(cancelled) => Some(order_cancelled(cancelled)),
        Event::PaymentRefunded(refunded) => Some(payment_refunded(refunded)),
        _ => None,
    }
}

fn draft(
    customer_id: &str,
    order_id: &str,
    template: Template,
    subject: String,
    body: String,
) -> Draft {
    Draft {
        customer_id: CustomerId::new(customer_id),
        order_id: order_id.to_owned(),
        template,
        subject,
        body,
    }
}

fn order_confirmed(event: &OrderConfirmed) -> Draft {
    let OrderConfirmed {
        order_id, total, ..
    } = event;
    draft(
        &event.customer_id,
        order_id,
        Template::OrderConfirmed,
        format!("Your order {order_id} is confirmed"),
        format!(
            "Good news: your order {order_id} is confirmed and your payment of {total} was \
             authorized.\nThank you for shopping with us."
        ),
    )
}

fn order_cancelled(event: &OrderCancelled) -> Draft {
    let OrderCancelled {
        order_id,
        total,
        reason,
        detail,
        ..
    } = event;
    let why = match reason {
        CancellationReason::PaymentDeclined => "the payment was declined",
        CancellationReason::CustomerRequested => "you asked us to cancel it",
        CancellationReason::PaymentTimeout => "the payment could not be completed in time",
    };
    let detail = detail
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| format!("\nDetail: {d}"))
        .unwrap_or_default();
    draft(
        &event.customer_id,
        order_id,
        Template::OrderCancelled,
        format!("Your order {order_id} was cancelled"),
        format!(
            "Your order {order_id} ({total}) was cancelled because {why}.{detail}\nIf your \
             payment was already taken, it will be refunded."
        ),
    )
}

fn payment_refunded(event: &PaymentRefunded) -> Draft {
    let PaymentRefunded {
        order_id, amount, ..
    } = event;
    draft(
        &event.customer_id,
        order_id,
        Template::PaymentRefunded,
        format!("Your refund for order {order_id}"),
        format!(
            "We refunded {amount} for your cancelled order {order_id}.\nIt can take a few days \
             to appear on your statement."
        ),
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kit::money::{Currency, Money};

    use super::*;

    const ORDER: &str = "0192f0c1-0000-7000-8000-000000000001";

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn cancelled(reason: CancellationReason, detail: Option<&str>) -> Event {
        Event::OrderCancelled(OrderCancelled {
            order_id: ORDER.into(),
            customer_id: "c-1".into(),
            total: eur(1250),
            reason,
            detail: detail.map(str::to_owned),
            cancelled_at: Utc::now(),
        })
    }

    #[test]
    fn a_confirmation_names_the_order_and_its_total() {
        let draft = compose(&Event::OrderConfirmed(OrderConfirmed {
            order_id: ORDER.into(),
            customer_id: "c-1".into(),
            total: eur(1250),
            confirmed_at: Utc::now(),
        }))
        .unwrap();
        assert_eq!(draft.template, Template::OrderConfirmed);
        assert_eq!(draft.customer_id.as_str(), "c-1");
        assert_eq!(draft.order_id, ORDER);
        assert_eq!(draft.subject, format!("Your order {ORDER} is confirmed"));
        assert!(draft.body.contains(ORDER), "{}", draft.body);
        assert!(draft.body.contains("12.50 EUR"), "{}", draft.body);
    }

    #[test]
    fn a_declined_cancellation_gives_the_reason_and_the_detail() {
        let draft = compose(&cancelled(
            CancellationReason::PaymentDeclined,
            Some("insufficient funds"),
        ))
        .unwrap();
        assert_eq!(draft.template, Template::OrderCancelled);
        assert!(draft.body.contains(ORDER), "{}", draft.body);
        assert!(draft.body.contains("(12.50 EUR)"), "{}", draft.body);
        assert!(
            draft.body.contains("because the payment was declined"),
            "{}",
            draft.body
        );
        assert!(
            draft.body.contains("Detail: insufficient funds"),
            "{}",
            draft.body
        );
    }

    #[test]
    fn a_cancellation_the_customer_asked_for_says_so_and_has_no_empty_detail() {
        let draft = compose(&cancelled(
            CancellationReason::CustomerRequested,
            Some("  "),
        ))
        .unwrap();
        assert!(
            draft.body.contains("because you asked us to cancel it"),
            "{}",
            draft.body
        );
        assert!(!draft.body.contains("Detail"), "{}", draft.body);
    }

    #[test]
    fn a_refund_names_the_order_and_the_amount_in_the_currency_minor_digits() {
        let jpy = Money::new(1500, Currency::parse("JPY").unwrap()).unwrap();
        let draft = compose(&Event::PaymentRefunded(PaymentRefunded {
            order_id: ORDER.into(),
            payment_id: "p-1".into(),
            customer_id: "c-1".into(),
            amount: jpy,
            refunded_at: Utc::now(),
        }))
        .unwrap();
        assert_eq!(draft.template, Template::PaymentRefunded);
        assert!(draft.subject.contains(ORDER));
        assert!(
            draft.body.contains("We refunded 1500 JPY"),
            "{}",
            draft.body
        );
        assert!(draft.body.contains(ORDER), "{}", draft.body);
    }

    #[test]
    fn events_customers_are_not_told_about_compose_nothing() {
        let authorized = Event::PaymentAuthorized(kit::events::PaymentAuthorized {
            order_id: ORDER.into(),
            payment_id: "p-1".into(),
            customer_id: "c-1".into(),
            amount: eur(1),
            authorized_at: Utc::now(),
        });
        assert_eq!(compose(&authorized), None);
    }

    #[test]
    fn template_names_and_serde_names_agree() {
        for template in [
            Template::OrderConfirmed,
            Template::OrderCancelled,
            Template::PaymentRefunded,
        ] {
            assert_eq!(
                serde_json::to_value(template).unwrap(),
                serde_json::json!(template.name())
            );
        }
    }
}
