//! The events handler when a write does not commit, or commits but reports a failure (a
//! timeout after the commit): no money may stay held on an order that was cancelled.

use std::sync::atomic::{AtomicUsize, Ordering};

use kit::{events::Envelope, ids::OrderId, sqs::Message};
use payments::{
    adapters::{memory::MemoryPayments, simulator::Simulator},
    domain::{OrderId as PaymentOrder, Payment, Status},
    handlers::events::{ConsumerError, handle},
    ports::{PaymentRepository, RepositoryError},
};

use crate::helpers::{app, cancelled, message, placed, redelivered};

/// What happens to the one write that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing is written.
    Lost,
    /// Everything is written, but the caller is told it failed.
    Ambiguous,
}

/// The store, except that its `nth` write (1-based, inserts and updates alike) fails.
struct FailingWrite<'a> {
    inner: &'a MemoryPayments,
    nth: usize,
    fault: Fault,
    writes: AtomicUsize,
}

impl FailingWrite<'_> {
    async fn write(
        &self,
        apply: impl Future<Output = Result<(), RepositoryError>>,
    ) -> Result<(), RepositoryError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        match (n == self.nth, self.fault) {
            (false, _) => apply.await,
            (true, Fault::Lost) => Err(RepositoryError::Unavailable("injected: lost".into())),
            (true, Fault::Ambiguous) => {
                apply.await?;
                Err(RepositoryError::Unavailable("injected: timed out".into()))
            }
        }
    }
}

impl PaymentRepository for FailingWrite<'_> {
    async fn get(&self, order_id: &PaymentOrder) -> Result<Option<Payment>, RepositoryError> {
        self.inner.get(order_id).await
    }

    async fn insert(
        &self,
        payment: &Payment,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        self.write(self.inner.insert(payment, events, processed_event))
            .await
    }

    async fn update(
        &self,
        payment: &Payment,
        expected_version: u64,
        events: &[Envelope],
        processed_event: Option<&str>,
    ) -> Result<(), RepositoryError> {
        self.write(
            self.inner
                .update(payment, expected_version, events, processed_event),
        )
        .await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, RepositoryError> {
        self.inner.is_processed(event_id).await
    }
}

async fn deliver(store: &FailingWrite<'_>, message: &Message) -> Result<(), ConsumerError> {
    let provider = Simulator::new(store.inner, false);
    handle(store, &provider, message.clone()).await
}

#[tokio::test]
async fn a_cancelled_order_holds_no_money_whichever_write_fails_and_however() {
    for fault in [Fault::Lost, Fault::Ambiguous] {
        for nth in 1..=5 {
            let app = app();
            let order = OrderId::generate();
            let store = FailingWrite {
                inner: &app.store,
                nth,
                fault,
                writes: AtomicUsize::new(0),
            };
            let place = message(&placed(&order, "tok_approve"), 1);
            let cancel = message(&cancelled(&order), 1);
            // Every delivery that fails is redelivered later, as SQS does.
            let _ = deliver(&store, &place).await;
            let _ = deliver(&store, &cancel).await;
            let _ = deliver(&store, &redelivered(&place)).await;
            let _ = deliver(&store, &redelivered(&cancel)).await;
            deliver(&store, &redelivered(&redelivered(&place)))
                .await
                .unwrap();
            deliver(&store, &redelivered(&redelivered(&cancel)))
                .await
                .unwrap();

            let case = format!("{fault:?} write #{nth}");
            assert!(!app.store.held(order.as_str()), "{case}: money held");
            assert!(!app.store.captured(order.as_str()), "{case}: money taken");
            assert!(app.store.charges(order.as_str()) <= 1, "{case}");
            let status = app.store.get(&order).await.unwrap().map(|p| p.status);
            assert!(
                matches!(status, Some(Status::Voided | Status::Cancelled)),
                "{case}: {status:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_charge_whose_payment_write_is_lost_is_released_when_the_order_is_cancelled_meanwhile() {
    let app = app();
    let order = OrderId::generate();
    // The write after the provider authorized (the 2nd: AUTHORIZING is the 1st) is lost.
    let store = FailingWrite {
        inner: &app.store,
        nth: 2,
        fault: Fault::Lost,
        writes: AtomicUsize::new(0),
    };
    let place = message(&placed(&order, "tok_approve"), 1);
    assert!(
        deliver(&store, &place).await.is_err(),
        "a lost write is retried"
    );
    assert!(
        app.store.held(order.as_str()),
        "the provider holds the amount"
    );
    deliver(&store, &message(&cancelled(&order), 1))
        .await
        .unwrap();
    deliver(&store, &redelivered(&place)).await.unwrap();

    assert_eq!(app.store.charges(order.as_str()), 1);
    assert!(
        !app.store.held(order.as_str()),
        "the authorization of a cancelled order must be released"
    );
}

/// The simulator, except that while an authorization is in flight the order's cancellation
/// is handled (the race of two deliveries running at once).
struct CancelledDuringAuthorization<'a> {
    store: &'a MemoryPayments,
    cancel: Message,
}

impl payments::ports::PaymentProvider for CancelledDuringAuthorization<'_> {
    async fn authorize(
        &self,
        request: &payments::ports::ChargeRequest,
    ) -> Result<payments::domain::ChargeOutcome, payments::ports::ProviderError> {
        let simulator = Simulator::new(self.store, false);
        Box::pin(handle(self.store, &simulator, self.cancel.clone()))
            .await
            .expect("the cancellation is applied while the provider authorizes");
        simulator.authorize(request).await
    }

    async fn capture(
        &self,
        call: &payments::ports::ProviderCall,
    ) -> Result<String, payments::ports::ProviderError> {
        Simulator::new(self.store, false).capture(call).await
    }

    async fn void(
        &self,
        call: &payments::ports::ProviderCall,
    ) -> Result<Option<String>, payments::ports::ProviderError> {
        Simulator::new(self.store, false).void(call).await
    }

    async fn refund(
        &self,
        call: &payments::ports::ProviderCall,
    ) -> Result<String, payments::ports::ProviderError> {
        Simulator::new(self.store, false).refund(call).await
    }
}

#[tokio::test]
async fn an_authorization_that_lands_after_the_cancellation_is_voided_by_the_delivery_that_made_it()
{
    let app = app();
    let order = OrderId::generate();
    let provider = CancelledDuringAuthorization {
        store: &app.store,
        cancel: message(&cancelled(&order), 1),
    };
    let place = message(&placed(&order, "tok_approve"), 1);
    // The cancel voided nothing (nothing was authorized yet); the authorization then landed.
    let _ = handle(&app.store, &provider, place.clone()).await;
    deliver_plain(&app.store, &redelivered(&place)).await;

    assert_eq!(app.store.charges(order.as_str()), 1);
    assert!(
        !app.store.held(order.as_str()),
        "money held on a cancelled order"
    );
    let status = app.store.get(&order).await.unwrap().map(|p| p.status);
    assert_eq!(status, Some(Status::Voided));
}

async fn deliver_plain(store: &MemoryPayments, message: &Message) {
    let provider = Simulator::new(store, false);
    handle(store, &provider, message.clone()).await.unwrap();
}
