//! A function process that dies mid-invocation: the invocation is an error, the process is
//! restarted, and the message comes back after the visibility timeout — nothing is lost.

use std::time::Duration;

use crate::helpers::{eventually, peek, signal, spawn_stack};
use crate::sqs_mapping::harmless_body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_process_killed_mid_invocation_does_not_lose_the_message() {
    let stack = spawn_stack(|o| o.only = vec!["orders-events".into()]).await;
    let f = stack.function("orders-events").unwrap().clone();
    let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
    let dlq = stack.resources.dlq_url("OrdersQueue").unwrap().to_owned();
    let pids = f.pids();
    assert_eq!(pids.len(), 1, "one warm process");
    // Freeze the process so the invocation is handed to it but never answered, then kill it.
    signal("-STOP", pids[0]);
    let sent = stack
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(harmless_body(1))
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    eventually("the invocation to start", Duration::from_secs(20), || {
        let f = f.clone();
        async move { (f.in_flight() > 0).then_some(()) }
    })
    .await;
    signal("-KILL", pids[0]);

    let deliveries = eventually(
        "a successful redelivery",
        Duration::from_secs(30),
        || async {
            let d = stack.reporter.deliveries();
            d.iter()
                .any(|d| d.success && d.ids.contains(&id))
                .then_some(d)
        },
    )
    .await;
    let first = deliveries.iter().find(|d| d.ids.contains(&id)).unwrap();
    assert!(
        !first.success && first.outcome.contains("crashed"),
        "first delivery: {first:?}"
    );
    assert!(
        !f.pids().contains(&pids[0]),
        "the killed process was replaced"
    );
    assert!(peek(&stack, &queue).await.is_empty());
    assert!(peek(&stack, &dlq).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_past_the_timeout_is_killed_restarted_and_retried() {
    let stack = spawn_stack(|o| {
        o.only = vec!["orders-events".into()];
        o.parameters.insert("EventsTimeout".into(), "1".into());
    })
    .await;
    let f = stack.function("orders-events").unwrap().clone();
    assert_eq!(
        f.spec().timeout_s,
        1,
        "Timeout comes from the template parameter"
    );
    let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
    let pid = f.pids()[0];
    signal("-STOP", pid);
    let sent = stack
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(harmless_body(2))
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    let deliveries = eventually(
        "a successful redelivery",
        Duration::from_secs(30),
        || async {
            let d = stack.reporter.deliveries();
            d.iter()
                .any(|d| d.success && d.ids.contains(&id))
                .then_some(d)
        },
    )
    .await;
    let first = deliveries.iter().find(|d| d.ids.contains(&id)).unwrap();
    assert!(
        first.outcome.contains("timed out"),
        "first delivery: {first:?}"
    );
    assert!(
        !f.pids().contains(&pid),
        "the stuck process was killed and replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_env_applies_to_a_function_after_a_restart() {
    let stack = spawn_stack(|o| o.only = vec!["orders-events".into()]).await;
    let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
    let broken = [("ORDERS_TABLE".to_owned(), "no-such-table".to_owned())]
        .into_iter()
        .collect();
    stack.set_env("orders-events", broken).unwrap();
    let sent = stack
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(harmless_body(3))
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    eventually(
        "a failed delivery against the missing table",
        Duration::from_secs(20),
        || async {
            stack
                .reporter
                .deliveries()
                .iter()
                .any(|d| d.ids.contains(&id) && d.failed_ids.contains(&id))
                .then_some(())
        },
    )
    .await;
    stack.set_env("orders-events", Default::default()).unwrap();
    eventually(
        "a successful redelivery with the template's env",
        Duration::from_secs(30),
        || async {
            stack
                .reporter
                .deliveries()
                .iter()
                .any(|d| d.ids.contains(&id) && d.success && d.failed_ids.is_empty())
                .then_some(())
        },
    )
    .await;
}
