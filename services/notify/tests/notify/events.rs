//! The events function: one notification and one NotificationSent per terminal event, once.

use std::sync::{Arc, Mutex};

use kit::events::{Envelope, Event};
use notify::{
    adapters::memory::MemoryNotifications,
    domain::{Notification, Template},
    ports::{Notifier, NotifyError},
};

use crate::helpers::{assert_valid_against_committed_schemas, deliver, eventbridge, failed};

#[tokio::test]
async fn each_terminal_event_records_one_notification_and_publishes_one_notification_sent() {
    let cases = [
        ("order-confirmed", Template::OrderConfirmed),
        ("order-cancelled", Template::OrderCancelled),
        ("payment-refunded", Template::PaymentRefunded),
    ];
    for (fixture, template) in cases {
        let store = MemoryNotifications::default();
        let incoming = eventbridge(fixture);
        let response = deliver(&store, std::slice::from_ref(&incoming)).await;
        assert!(failed(&response).is_empty(), "{fixture}: {response:?}");

        let [notification] = store
            .notifications()
            .try_into()
            .unwrap_or_else(|all: Vec<_>| {
                panic!("{fixture}: expected one notification, got {}", all.len())
            });
        let detail = &incoming["detail"];
        assert_eq!(notification.template, template, "{fixture}");
        assert_eq!(notification.customer_id.as_str(), "customer-1");
        assert_eq!(notification.order_id, detail["data"]["order_id"]);
        assert_eq!(notification.event_id, detail["id"]);
        assert_eq!(notification.channel, "record");
        assert!(
            notification.body.contains("12.50 EUR"),
            "{}",
            notification.body
        );

        let [sent] = store
            .outbox()
            .try_into()
            .unwrap_or_else(|all: Vec<Envelope>| {
                panic!("{fixture}: expected one outbox event, got {}", all.len())
            });
        assert_eq!(sent.event_type, "NotificationSent");
        assert_eq!(sent.source, "shop.notify");
        assert_eq!(sent.correlation_id, detail["correlation_id"]);
        assert_eq!(sent.causation_id.as_deref(), detail["id"].as_str());
        let Ok(Event::NotificationSent(payload)) = sent.decode() else {
            panic!("{fixture}: not a NotificationSent: {sent:?}")
        };
        assert_eq!(payload.notification_id, notification.id.as_str());
        assert_eq!(payload.customer_id, "customer-1");
        assert_eq!(payload.order_id, notification.order_id);
        assert_eq!(payload.about, detail["type"]);
        assert_eq!(payload.channel, "record");
        assert_valid_against_committed_schemas(&sent);
    }
}

#[tokio::test]
async fn a_redelivered_event_notifies_only_once() {
    let store = MemoryNotifications::default();
    let event = eventbridge("order-confirmed");
    let first = deliver(&store, std::slice::from_ref(&event)).await;
    let again = deliver(&store, &[event.clone(), event]).await;
    assert!(failed(&first).is_empty() && failed(&again).is_empty());
    assert_eq!(store.notifications().len(), 1);
    assert_eq!(store.outbox().len(), 1);
}

#[tokio::test]
async fn an_event_customers_are_not_told_about_is_acknowledged_without_a_notification() {
    let store = MemoryNotifications::default();
    let response = deliver(&store, &[eventbridge("payment-authorized")]).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert!(store.notifications().is_empty());
    assert!(store.outbox().is_empty());
}

/// A notifier whose store is down.
struct Unavailable;

impl Notifier for Unavailable {
    fn channel(&self) -> &'static str {
        "record"
    }
    async fn is_processed(&self, _: &str) -> Result<bool, NotifyError> {
        Ok(false)
    }
    async fn send(&self, _: &Notification, _: &[Envelope]) -> Result<(), NotifyError> {
        Err(NotifyError::Unavailable("table throttled".into()))
    }
}

#[tokio::test]
async fn only_the_message_that_could_not_be_sent_is_reported_for_a_retry() {
    let response = deliver(
        &Unavailable,
        &[
            eventbridge("payment-authorized"),
            eventbridge("order-confirmed"),
        ],
    )
    .await;
    assert_eq!(failed(&response), ["m1"]);
}

/// A log sink for one test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_line_of_a_notification_names_ids_and_template_but_no_personal_data() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let store = MemoryNotifications::default();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        deliver(&store, &[eventbridge("order-cancelled")]).await;
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("notification sent"))
        .unwrap_or_else(|| panic!("no 'notification sent' line in {text}"));
    let notification = &store.notifications()[0];
    assert!(line.contains(notification.id.as_str()), "{line}");
    assert!(line.contains(&notification.order_id), "{line}");
    assert!(line.contains("order-cancelled"), "{line}");
    for private in [
        "customer-1",
        "insufficient funds",
        notification.subject.as_str(),
    ] {
        assert!(!text.contains(private), "logs reveal {private:?}: {text}");
    }
}
