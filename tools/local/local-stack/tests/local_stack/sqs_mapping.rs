//! The SQS event source mapping: batches, partial batch failures, visibility timeout, redrive.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::Utc;
use kit::events::{Envelope, Event, NotificationSent};
use local_stack::sqs::deliveries_per_message;

use crate::helpers::{eventually, peek, spawn_stack};

/// An event orders-events acknowledges without effect (it is not for orders).
pub(crate) fn harmless_body(n: usize) -> String {
    let event = Event::NotificationSent(NotificationSent {
        notification_id: format!("n-{n}"),
        customer_id: "c".into(),
        order_id: format!("o-{n}"),
        about: "OrderConfirmed".into(),
        channel: "record".into(),
        sent_at: Utc::now(),
    });
    let envelope = Envelope::new("shop.notify", &event, "corr-sqs-test", None, Utc::now()).unwrap();
    serde_json::json!({"version": "0", "id": format!("eb-{n}"), "detail-type": "NotificationSent",
        "source": "shop.notify", "detail": envelope})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dlq_after_max_receive_count_while_the_rest_of_its_batch_is_processed_once()
 {
    let stack = spawn_stack(|o| o.only = vec!["orders-events".into()]).await;
    let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
    let dlq = stack.resources.dlq_url("OrdersQueue").unwrap().to_owned();
    let max_receives = stack.resources.queues["OrdersQueue"]
        .max_receive_count
        .unwrap();

    let mut entries = Vec::new();
    for n in 0..4 {
        entries.push(
            SendMessageBatchRequestEntry::builder()
                .id(format!("ok{n}"))
                .message_body(harmless_body(n))
                .build()
                .unwrap(),
        );
    }
    entries.push(
        SendMessageBatchRequestEntry::builder()
            .id("poison")
            .message_body("not json")
            .build()
            .unwrap(),
    );
    let sent = stack
        .clients
        .sqs
        .send_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    let ids: HashMap<String, String> = sent
        .successful()
        .iter()
        .map(|e| (e.id().to_owned(), e.message_id().to_owned()))
        .collect();
    assert_eq!(ids.len(), 5);

    let in_dlq = eventually(
        "the poison message in the DLQ",
        Duration::from_secs(60),
        || async {
            let m = peek(&stack, &dlq).await;
            (!m.is_empty()).then_some(m)
        },
    )
    .await;
    assert_eq!(in_dlq.len(), 1);
    assert_eq!(in_dlq[0].body(), Some("not json"));

    let counts = deliveries_per_message(&stack.reporter);
    for n in 0..4 {
        assert_eq!(
            counts.get(&ids[&format!("ok{n}")]),
            Some(&1),
            "valid message {n} delivered exactly once"
        );
    }
    assert_eq!(
        counts.get(&ids["poison"]).copied(),
        Some(max_receives as usize),
        "poison delivered maxReceiveCount times"
    );
    let deliveries = stack.reporter.deliveries();
    assert!(
        deliveries
            .iter()
            .filter(|d| d.ids.contains(&ids["poison"]))
            .all(|d| d.failed_ids == vec![ids["poison"].clone()]),
        "each delivery reported only the poison message as failed: {deliveries:#?}"
    );
    assert!(
        peek(&stack, &queue).await.is_empty(),
        "nothing is left in the queue"
    );
}
