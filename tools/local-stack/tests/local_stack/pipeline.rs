//! The whole outbox path from the template: HTTP → orders table → stream mapping (with its
//! filter) → orders-relay → bus → rule → payments queue.

use std::time::Duration;

use crate::helpers::{eventually, peek, spawn_stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_over_http_reaches_the_payments_queue_through_stream_relay_bus_and_rule() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
    let token = stack.token("bob", &[]).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(token)
        .json(
            &serde_json::json!({"lines": [{"sku": "SKU-9", "quantity": 1,
            "unit_price": {"amount": 500, "currency": "EUR"}}], "card_token": "tok_approve"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let order: serde_json::Value = r.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
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
