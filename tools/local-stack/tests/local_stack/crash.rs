//! A function process that dies mid-invocation: the invocation is an error, the process is
//! restarted, and the message comes back after the visibility timeout — nothing is lost.

use std::time::Duration;

use crate::helpers::{eventually, peek, spawn_stack};
use crate::sqs_mapping::harmless_body;

fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

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
