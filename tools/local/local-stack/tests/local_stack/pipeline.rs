//! The whole outbox path from the template: HTTP → orders table → stream mapping (with its
//! filter) → orders-relay → bus → rule → payments queue.

use std::time::Duration;

use crate::helpers::{eventually, peek, place_order, spawn_stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_over_http_reaches_the_payments_queue_through_stream_relay_bus_and_rule() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
    let id = place_order(&stack, "bob", "tok_approve").await;
    let queue = stack
        .resources
        .queue_url("PaymentsQueue")
        .unwrap()
        .to_owned();
    let body = eventually(
        "OrderPlaced in the payments queue",
        Duration::from_secs(30),
        || async {
            peek(&stack, &queue)
                .await
                .into_iter()
                .find_map(|m| m.body().filter(|b| b.contains(&id)).map(str::to_owned))
        },
    )
    .await;
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["detail-type"], "OrderPlaced");
    assert_eq!(event["source"], "shop.orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_cannot_publish_is_retried_then_its_batch_goes_to_the_on_failure_queue() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
    let broken = [("EVENT_BUS_NAME".to_owned(), "no-such-bus".to_owned())]
        .into_iter()
        .collect();
    stack.set_env("orders-relay", broken).unwrap();
    let token = stack.token("carol", &["shop/orders"]).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(token)
        .json(
            &serde_json::json!({"lines": [{"sku": "SKU-3", "quantity": 1,
            "unit_price": {"amount": 700, "currency": "EUR"}}], "card_token": "tok_approve"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let dlq = stack
        .resources
        .queue_url("OrdersRelayDlq")
        .unwrap()
        .to_owned();
    let body = eventually(
        "the batch in the relay's OnFailure queue",
        Duration::from_secs(60),
        || async {
            peek(&stack, &dlq)
                .await
                .into_iter()
                .find_map(|m| m.body().map(str::to_owned))
        },
    )
    .await;
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 1);
    let stream = &stack.resources.tables["OrdersTable"].stream_arn;
    assert_eq!(
        record["DDBStreamBatchInfo"]["streamArn"].as_str(),
        stream.as_deref()
    );

    let relay = stack.function("orders-relay").unwrap().spec().clone();
    let max_retries = relay.streams[0].max_retries;
    let attempts = stack
        .reporter
        .deliveries()
        .iter()
        .filter(|d| d.source == "dynamodb" && !d.success)
        .count();
    assert_eq!(
        attempts as i64,
        max_retries + 1,
        "one attempt plus MaximumRetryAttempts retries"
    );
    let payments_queue = stack
        .resources
        .queue_url("PaymentsQueue")
        .unwrap()
        .to_owned();
    assert!(
        peek(&stack, &payments_queue).await.is_empty(),
        "nothing was published"
    );
}

/// Every relay function runs the one `outbox-relay` binary: the local stack keeps one pool,
/// log and environment per function, each told its own service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relays_of_two_services_share_a_binary_yet_run_as_two_functions() {
    let stack =
        spawn_stack(|o| o.only = vec!["orders-relay".into(), "payments-relay".into()]).await;
    for service in ["orders", "payments"] {
        let relay = stack.function(&format!("{service}-relay")).unwrap();
        assert_eq!(relay.spec().binary, "outbox-relay");
        assert_eq!(
            relay.spec().env.get("SERVICE_NAME").map(String::as_str),
            Some(service),
            "{service}-relay runs with another service's environment"
        );
        assert!(
            relay.log_file().ends_with(format!("{service}-relay.log")),
            "{service}-relay logs to {}",
            relay.log_file().display()
        );
    }
}
