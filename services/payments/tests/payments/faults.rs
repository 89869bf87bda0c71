//! The events handler when a write does not commit: no money may stay held on an order that
//! was cancelled meanwhile.

use std::sync::atomic::{AtomicU32, Ordering};

use kit::{events::Envelope, ids::OrderId};
use payments::{
    domain::{OrderId as PaymentOrder, Payment},
    ports::{PaymentRepository, RepositoryError},
};

use crate::helpers::{app, cancelled, message, placed, redelivered};

/// The store, except that its next `fail_inserts` inserts do not commit.
struct FailingInserts<'a> {
    inner: &'a payments::adapters::memory::MemoryPayments,
    fail_inserts: AtomicU32,
}

impl PaymentRepository for FailingInserts<'_> {
    async fn get(&self, order_id: &PaymentOrder) -> Result<Option<Payment>, RepositoryError> {
        self.inner.get(order_id).await
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        if self
            .fail_inserts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(RepositoryError::Unavailable("injected: write lost".into()));
        }
        self.inner.insert(payment, events, processed_event).await
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: &str,
    ) -> Result<(), RepositoryError> {
        self.inner
            .update(payment, expected_version, events, processed_event)
            .await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        self.inner.is_processed(event_id).await
    }
}

#[tokio::test]
async fn a_charge_whose_payment_write_is_lost_is_released_when_the_order_is_cancelled_meanwhile() {
    let app = app();
    let order = OrderId::generate();
    let store = FailingInserts {
        inner: &app.store,
        fail_inserts: AtomicU32::new(1),
    };
    let provider = payments::adapters::simulator::Simulator::new(&app.store, false);
    let place = message(&placed(&order, "tok_approve"), 1);

    // The provider authorized, but the payment write did not commit: the message is retried.
    let first = payments::handlers::events::handle(&store, &provider, place.clone()).await;
    assert!(first.is_err(), "a lost write is retried");
    // Meanwhile the customer cancels, then OrderPlaced is redelivered.
    payments::handlers::events::handle(&store, &provider, message(&cancelled(&order), 1))
        .await
        .unwrap();
    payments::handlers::events::handle(&store, &provider, redelivered(&place))
        .await
        .unwrap();

    assert_eq!(app.store.charges(order.as_str()), 1);
    assert_eq!(
        app.store.refunds(order.as_str()),
        1,
        "the authorization of a cancelled order must be released"
    );
}
