//! The events handler on the in-memory adapters: every simulator token, duplicates, refunds,
//! cancellation before payment, and the SQS batch around it.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use kit::{
    events::{Event, NotificationSent},
    ids::OrderId,
};
use payments::{
    domain::{Status, payment_id},
    handlers::events::ConsumerError,
    ports::{Operation, PaymentRepository, ProviderError},
};

use crate::helpers::{CUSTOMER, app, cancelled, confirmed, eur, message, placed, redelivered};

async fn status(app: &crate::helpers::App, order: &OrderId) -> Option<Status> {
    app.store.get(order).await.unwrap().map(|p| p.status)
}

#[tokio::test]
async fn an_approved_card_is_authorized_and_publishes_payment_authorized() {
    let app = app();
    let order = OrderId::generate();
    let incoming = message(&placed(&order, "tok_approve"), 1);
    app.deliver(incoming.clone()).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Authorized));
    assert_eq!(app.store.charges(order.as_str()), 1);
    let published = app.published();
    assert_eq!(published.len(), 1);
    let envelope = &published[0];
    assert_eq!(envelope.correlation_id, incoming.envelope.correlation_id);
    assert_eq!(
        envelope.causation_id,
        Some(incoming.envelope.id.to_string())
    );
    let Ok(Event::PaymentAuthorized(authorized)) = envelope.decode() else {
        panic!("expected PaymentAuthorized, got {}", envelope.event_type)
    };
    assert_eq!(authorized.order_id, order.as_str());
    assert_eq!(authorized.payment_id, payment_id(&order));
    assert_eq!(authorized.customer_id, CUSTOMER);
    assert_eq!(authorized.amount, eur(2500));
}

#[tokio::test]
async fn a_declined_card_is_a_business_outcome_published_as_payment_declined() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(
        &placed(&order, "tok_decline_insufficient_funds"),
        1,
    ))
    .await
    .expect("a decline is not an error");

    let payment = app.store.get(&order).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Declined);
    assert_eq!(
        payment.decline_reason.as_deref(),
        Some("insufficient_funds")
    );
    let published = app.published();
    assert_eq!(published.len(), 1);
    assert!(matches!(
        published[0].decode(),
        Ok(Event::PaymentDeclined(declined)) if declined.reason == "insufficient_funds"
    ));
}

#[tokio::test]
async fn a_flaky_card_fails_its_first_deliveries_then_is_charged_exactly_once() {
    let app = app();
    let order = OrderId::generate();
    let first = message(&placed(&order, "tok_flaky_2"), 1);
    let second = redelivered(&first);
    let third = redelivered(&second);

    for attempt in [first, second] {
        let error = app.deliver(attempt).await.unwrap_err();
        assert!(
            matches!(error, ConsumerError::Provider(ProviderError::Transient(_))),
            "{error}"
        );
        assert_eq!(status(&app, &order).await, Some(Status::Authorizing));
        assert!(app.published().is_empty());
    }
    app.deliver(third.clone()).await.unwrap();
    app.deliver(redelivered(&third)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Authorized));
    assert_eq!(app.store.charges(order.as_str()), 1);
    assert_eq!(app.published().len(), 1);
}

#[tokio::test]
async fn an_unavailable_provider_is_an_error_on_every_delivery_so_the_message_reaches_the_dlq() {
    let app = app();
    let order = OrderId::generate();
    let mut delivery = message(&placed(&order, "tok_unavailable"), 1);
    for _ in 0..5 {
        assert!(app.deliver(delivery.clone()).await.is_err());
        delivery = redelivered(&delivery);
    }
    assert_eq!(status(&app, &order).await, Some(Status::Authorizing));
    assert_eq!(app.store.charges(order.as_str()), 0);
    assert!(app.published().is_empty());
}

#[tokio::test]
async fn a_message_redriven_after_the_provider_recovered_is_authorized() {
    let mut app = app();
    let order = OrderId::generate();
    let dead = message(&placed(&order, "tok_unavailable"), 3);
    assert!(app.deliver(dead.clone()).await.is_err());

    app.recovered = true;
    // A redrive from the DLQ is a new SQS message: its receive count starts again at 1.
    app.deliver(message_from_dlq(&dead)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Authorized));
    assert_eq!(app.store.charges(order.as_str()), 1);
    assert_eq!(app.published()[0].event_type, "PaymentAuthorized");
}

fn message_from_dlq(dead: &kit::sqs::Message) -> kit::sqs::Message {
    kit::sqs::Message {
        message_id: uuid::Uuid::new_v4().to_string(),
        receive_count: 1,
        ..dead.clone()
    }
}

#[tokio::test]
async fn a_duplicate_order_placed_charges_once_and_publishes_once() {
    let app = app();
    let order = OrderId::generate();
    let original = message(&placed(&order, "tok_approve"), 1);
    app.deliver(original.clone()).await.unwrap();
    app.deliver(redelivered(&original)).await.unwrap();
    // The same order placed again under another event id (e.g. a republished outbox record).
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();

    assert_eq!(app.store.charges(order.as_str()), 1);
    assert_eq!(app.published().len(), 1);
}

#[tokio::test]
async fn an_order_cancelled_before_capture_is_voided_once_and_holds_nothing() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();
    assert!(app.store.held(order.as_str()));
    let cancel = message(&cancelled(&order), 1);
    app.deliver(cancel.clone()).await.unwrap();
    app.deliver(redelivered(&cancel)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Voided));
    assert!(!app.store.held(order.as_str()));
    assert_eq!(app.store.count(Operation::Void, order.as_str()), 1);
    assert_eq!(app.store.refunds(order.as_str()), 0);
    let types: Vec<String> = app.published().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["PaymentAuthorized"]);
}

#[tokio::test]
async fn a_confirmed_order_is_captured_once() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();
    let confirm = message(&confirmed(&order), 1);
    app.deliver(confirm.clone()).await.unwrap();
    app.deliver(redelivered(&confirm)).await.unwrap();
    app.deliver(message(&confirmed(&order), 1)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Captured));
    assert_eq!(app.store.count(Operation::Capture, order.as_str()), 1);
    assert!(app.store.captured(order.as_str()));
    assert!(!app.store.held(order.as_str()));
}

#[tokio::test]
async fn a_confirmed_order_cancelled_later_is_refunded_and_publishes_payment_refunded() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();
    app.deliver(message(&confirmed(&order), 1)).await.unwrap();
    let cancel = message(&cancelled(&order), 1);
    app.deliver(cancel.clone()).await.unwrap();
    app.deliver(redelivered(&cancel)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Refunded));
    assert_eq!(app.store.refunds(order.as_str()), 1);
    assert!(!app.store.captured(order.as_str()));
    let published = app.published();
    let types: Vec<&str> = published.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["PaymentAuthorized", "PaymentRefunded"]);
    assert_eq!(
        published[1].causation_id,
        Some(cancel.envelope.id.to_string())
    );
    assert!(matches!(
        published[1].decode(),
        Ok(Event::PaymentRefunded(refunded)) if refunded.amount == eur(2500)
    ));
}

#[tokio::test]
async fn a_confirmation_that_arrives_after_the_cancellation_captures_nothing() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();
    app.deliver(message(&cancelled(&order), 1)).await.unwrap();
    app.deliver(message(&confirmed(&order), 1)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Voided));
    assert_eq!(app.store.count(Operation::Capture, order.as_str()), 0);
}

#[tokio::test]
async fn a_capture_void_or_refund_that_fails_transiently_is_retried_until_it_succeeds() {
    for (token, steps) in [
        ("tok_flaky_capture_2", &["confirm"][..]),
        ("tok_flaky_void_2", &["cancel"][..]),
        ("tok_flaky_refund_2", &["confirm", "cancel"][..]),
    ] {
        let app = app();
        let order = OrderId::generate();
        app.deliver(message(&placed(&order, token), 1))
            .await
            .unwrap();
        for step in steps {
            let event = if *step == "confirm" {
                confirmed(&order)
            } else {
                cancelled(&order)
            };
            let mut delivery = message(&event, 1);
            let mut failures = 0;
            while app.deliver(delivery.clone()).await.is_err() {
                failures += 1;
                assert!(failures <= 2, "{token}: {step} still failing");
                delivery = redelivered(&delivery);
            }
        }
        let expected = match token {
            "tok_flaky_capture_2" => Status::Captured,
            "tok_flaky_void_2" => Status::Voided,
            _ => Status::Refunded,
        };
        assert_eq!(status(&app, &order).await, Some(expected), "{token}");
        assert!(!app.store.held(order.as_str()), "{token}");
    }
}

#[tokio::test]
async fn an_event_that_does_not_match_the_payment_is_refused_and_changes_nothing() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .unwrap();
    let mut forged = cancelled(&order);
    if let Event::OrderCancelled(cancel) = &mut forged {
        cancel.customer_id = "mallory".into();
    }
    assert!(matches!(
        app.deliver(message(&forged, 1)).await,
        Err(ConsumerError::Mismatch { .. })
    ));
    let mut cheaper = confirmed(&order);
    if let Event::OrderConfirmed(confirm) = &mut cheaper {
        confirm.total = eur(1);
    }
    assert!(app.deliver(message(&cheaper, 1)).await.is_err());
    assert_eq!(status(&app, &order).await, Some(Status::Authorized));
    assert!(app.store.held(order.as_str()));
}

#[tokio::test]
async fn an_order_cancelled_after_a_decline_is_acknowledged_without_a_refund() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&placed(&order, "tok_decline_expired_card"), 1))
        .await
        .unwrap();
    app.deliver(message(&cancelled(&order), 1)).await.unwrap();

    assert_eq!(status(&app, &order).await, Some(Status::Declined));
    assert_eq!(app.store.refunds(order.as_str()), 0);
    assert_eq!(app.published().len(), 1);
}

#[tokio::test]
async fn an_order_cancelled_before_it_was_placed_is_never_charged() {
    let app = app();
    let order = OrderId::generate();
    app.deliver(message(&cancelled(&order), 1)).await.unwrap();
    assert_eq!(status(&app, &order).await, Some(Status::Cancelled));

    app.deliver(message(&placed(&order, "tok_approve"), 1))
        .await
        .expect("the late OrderPlaced is acknowledged");

    assert_eq!(status(&app, &order).await, Some(Status::Cancelled));
    assert_eq!(app.store.charges(order.as_str()), 0);
    assert!(app.published().is_empty());
}

#[tokio::test]
async fn events_not_for_payments_are_acknowledged_without_effect() {
    let app = app();
    let event = Event::NotificationSent(NotificationSent {
        notification_id: "n-1".into(),
        customer_id: CUSTOMER.into(),
        order_id: OrderId::generate().to_string(),
        about: "OrderConfirmed".into(),
        channel: "record".into(),
        sent_at: chrono::Utc::now(),
    });
    app.deliver(message(&event, 1)).await.unwrap();
    assert!(app.published().is_empty());
}

#[tokio::test]
async fn an_order_placed_with_an_id_that_is_not_an_order_id_is_an_error() {
    let app = app();
    let mut event = placed(&OrderId::generate(), "tok_approve");
    if let Event::OrderPlaced(placed) = &mut event {
        placed.order_id = "not-an-id".into();
    }
    assert!(matches!(
        app.deliver(message(&event, 1)).await,
        Err(ConsumerError::InvalidOrderId(_))
    ));
}

fn sqs_record(token: &str, message_id: &str) -> SqsMessage {
    let fixture = include_str!("../fixtures/order-placed.sqs-record.json");
    let mut record: SqsMessage = serde_json::from_str(fixture).unwrap();
    let body = record.body.take().unwrap();
    let order = OrderId::generate();
    let body = body
        .replace("tok_approve", token)
        .replace("0190a0e0-0000-7000-8000-000000000002", order.as_str())
        .replace(
            "0190a0e1-0000-7000-8000-0000000000a1",
            &uuid::Uuid::now_v7().to_string(),
        );
    record.body = Some(body);
    record.message_id = Some(message_id.into());
    record
}

#[tokio::test]
async fn in_an_sqs_batch_only_the_transiently_failing_message_is_reported_for_retry() {
    let app = app();
    let mut batch = SqsEvent::default();
    batch.records = vec![
        sqs_record("tok_approve", "m-approve"),
        sqs_record("tok_unavailable", "m-unavailable"),
        sqs_record("tok_decline_do_not_honor", "m-decline"),
    ];
    let provider = payments::adapters::simulator::Simulator::new(&app.store, false);
    let response = kit::sqs::process_batch("payments", batch, |message| {
        payments::handlers::events::handle(&app.store, &provider, message)
    })
    .await;

    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-unavailable"]);
    let types: Vec<String> = app.published().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["PaymentAuthorized", "PaymentDeclined"]);
}
