//! `spawn_stack`: a local stack on the shared moto with its own resource names.

use std::time::{Duration, Instant};

use local_stack::{Options, Stack};
use serde_json::json;

/// A stack on this test binary's moto, with a fresh name prefix, short visibility timeouts
/// (so redrive happens in seconds) and any free port; `configure` adjusts the options.
pub(crate) async fn spawn_stack(configure: impl FnOnce(&mut Options)) -> Stack {
    let root = testkit::repo_root();
    tokio::task::block_in_place(testkit::build_functions);
    let mut o = Options::new(root);
    o.build = false;
    o.aws_endpoint = Some(testkit::moto().endpoint.clone());
    o.prefix = Some(format!(
        "t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    o.visibility_timeout = Some(5);
    o.print = std::env::var("TEST_LOG").is_ok();
    o.echo_logs = std::env::var("TEST_LOG").is_ok();
    configure(&mut o);
    Stack::start(o).await.expect("the local stack starts")
}

/// Places an order (one SKU-1 at 5 EUR, paid with `card_token`) as `sub` over the stack's HTTP
/// API; returns its id.
pub(crate) async fn place_order(stack: &Stack, sub: &str, card_token: &str) -> String {
    let token = stack.token(sub, &["shop/orders"]).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(token)
        .json(&json!({"lines": [{"sku": "SKU-1", "quantity": 1,
            "unit_price": {"amount": 500, "currency": "EUR"}}], "card_token": card_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let order: serde_json::Value = r.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `limit`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages currently in a queue (received with a zero visibility timeout, so they stay).
pub(crate) async fn peek(stack: &Stack, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let r = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    r.messages.unwrap_or_default()
}

/// Sends a signal (`-STOP`, `-KILL` …) to a process.
pub(crate) fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}
