//! The saga page (`/_local/`) and its JSON twin: served by the runner beside the HTTP API,
//! never through the template's routes.

use std::time::Duration;

use local_stack::timeline::{Kind, OrderView, SagasView};
use serde_json::Value;

use crate::helpers::{eventually, spawn_stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_of_an_order_lists_its_request_and_relay_with_event_types_and_trace_ids() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
    let token = stack.token("dora", &["shop/orders"]).unwrap();
    let c = reqwest::Client::new();
    let order: Value = c
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(token)
        .json(
            &serde_json::json!({"lines": [{"sku": "SKU-7", "quantity": 1,
            "unit_price": {"amount": 900, "currency": "EUR"}}], "card_token": "tok_approve"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    let url = format!("{}/_local/api/orders/{id}", stack.api_url);

    let view: OrderView = eventually(
        "the relay's OrderPlaced in the saga",
        Duration::from_secs(30),
        || async {
            let r = c.get(&url).send().await.ok()?;
            let view: OrderView = r.json().await.ok()?;
            view.saga
                .hops
                .iter()
                .any(|h| h.kind == Kind::Relay)
                .then_some(view)
        },
    )
    .await;
    let hops = &view.saga.hops;
    assert_eq!(hops.len(), 2, "{hops:#?}");
    assert!(hops[0].function.ends_with("-orders-http"));
    assert_eq!(hops[0].detail, "POST /v1/orders → 201");
    assert!(hops[1].function.ends_with("-orders-relay"));
    assert_eq!(hops[1].event_types, vec!["OrderPlaced"]);
    assert!(hops.iter().all(|h| {
        h.trace_id
            .as_deref()
            .is_some_and(|t| t.starts_with("Root=1-"))
    }));
    assert_eq!(view.saga.state.as_deref(), Some("PENDING"));
    assert_eq!(view.saga.correlation_ids.len(), 1);
    assert!(
        view.queues
            .iter()
            .any(|q| q.logical_id == "PaymentsQueueDlq" && q.dlq)
    );

    let list: SagasView = c
        .get(format!("{}/_local/api/sagas", stack.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.sagas[0].order_id, id);
    assert_eq!(list.sagas[0].invocations, 2);

    let page = c
        .get(format!("{}/_local/?order={id}", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<svg id=\"timeline\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_pages_need_no_token_and_never_reach_the_api_routes() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
    let c = reqwest::Client::new();
    for path in ["/_local", "/_local/", "/_local/api/sagas"] {
        let r = c
            .get(format!("{}{path}", stack.api_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let missing = c
        .get(format!("{}/_local/api/orders/no-such-order", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        stack.reporter.deliveries().is_empty(),
        "the API saw a /_local/ request: {:?}",
        stack.reporter.deliveries()
    );
    let api = c
        .get(format!("{}/v1/orders", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401, "the API's routes are unchanged");
}
