//! The pollers' cadence follows Lambda's: a stream shard is read about four times a second and
//! a queue is long-polled, so with a batching window of 0 a record or message reaches its
//! function within half a second; a batching window holds the first record at least that long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use local_stack::Stack;

use crate::helpers::{eventually, spawn_stack};
use crate::sqs_mapping::harmless_body;

/// Places an order over HTTP; returns its id and when the request started and returned.
async fn place_order(stack: &Stack) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let before = Utc::now();
    let id = crate::helpers::place_order(stack, "dora", "tok_approve").await;
    (id, before, Utc::now())
}

/// When the first delivery from `source` that satisfies `wanted` started.
async fn delivered(
    stack: &Stack,
    source: &str,
    wanted: impl Fn(&local_stack::report::Delivery) -> bool,
) -> DateTime<Utc> {
    eventually(
        &format!("a {source} delivery"),
        Duration::from_secs(30),
        || async {
            stack
                .reporter
                .deliveries()
                .into_iter()
                .find(|d| d.source == source && wanted(d))
                .and_then(|d| d.started_at)
        },
    )
    .await
}

async fn relay_delay(stack: &Stack) -> (chrono::Duration, chrono::Duration) {
    let (id, before, after) = place_order(stack).await;
    let started = delivered(stack, "dynamodb", |d| d.order_ids.contains(&id)).await;
    (started - before, started - after)
}

async fn consumer_delay(stack: &Stack) -> (chrono::Duration, chrono::Duration) {
    let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
    let before = Utc::now();
    let sent = stack
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(harmless_body(7))
        .send()
        .await
        .unwrap();
    let after = Utc::now();
    let id = sent.message_id().unwrap().to_owned();
    let started = delivered(stack, "sqs", |d| d.ids.contains(&id)).await;
    (started - before, started - after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_templates_default_window_a_stream_record_reaches_its_relay_within_half_a_second()
{
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
    // Let the shard loop start and go idle first: the record must be found by an idle poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, delay) = relay_delay(&stack).await;
    assert!(
        delay < chrono::Duration::milliseconds(500),
        "the relay was invoked {delay} after the write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batching_window_of_one_second_holds_the_first_record_that_long() {
    let stack = spawn_stack(|o| {
        o.only = vec!["orders-http".into(), "orders-relay".into()];
        o.parameters
            .insert("StreamBatchingWindowSeconds".into(), "1".into());
    })
    .await;
    let (delay, _) = relay_delay(&stack).await;
    assert!(
        delay >= chrono::Duration::seconds(1),
        "the relay was invoked {delay} after the write, inside the batching window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_templates_default_window_a_queue_message_reaches_its_consumer_within_half_a_second()
 {
    let stack = spawn_stack(|o| o.only = vec!["orders-events".into()]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, delay) = consumer_delay(&stack).await;
    assert!(
        delay < chrono::Duration::milliseconds(500),
        "orders-events was invoked {delay} after the send"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_batching_window_of_one_second_holds_the_first_message_that_long() {
    let stack = spawn_stack(|o| {
        o.only = vec!["orders-events".into()];
        o.parameters
            .insert("QueueBatchingWindowSeconds".into(), "1".into());
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (delay, _) = consumer_delay(&stack).await;
    assert!(
        delay >= chrono::Duration::seconds(1),
        "orders-events was invoked {delay} after the send, inside the batching window"
    );
}
