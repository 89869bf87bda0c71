//! `local-stack invoke`: a raw API Gateway v2 event (from `sam local generate-event apigateway
//! http-api-proxy`, adapted to `GET /v1/orders`) gives the same response as the same request
//! through the local HTTP API.

use serde_json::Value;

use crate::helpers::spawn_stack;

const EVENT: &str = include_str!("../fixtures/http-api-list-orders.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sam_generated_event_and_the_http_request_get_the_same_response() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let sub = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        .as_str()
        .unwrap();

    let invoked = stack.invoke("orders-http", &event).await.unwrap();
    let direct = invoked
        .outcome
        .json()
        .expect("orders-http answered the event");

    let token = stack.token(sub, &["shop/orders"]).unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/v1/orders?limit=5", stack.api_url))
        .bearer_auth(token)
        .header("accept", "application/json")
        .header("x-correlation-id", "sam-fixture-corr")
        .send()
        .await
        .unwrap();

    assert_eq!(
        direct["statusCode"].as_u64(),
        Some(u64::from(r.status().as_u16()))
    );
    for name in ["content-type", "x-correlation-id"] {
        assert_eq!(
            direct["headers"][name].as_str(),
            r.headers().get(name).and_then(|h| h.to_str().ok()),
            "header {name}"
        );
    }
    let http_body: Value = r.json().await.unwrap();
    let direct_body: Value = serde_json::from_str(direct["body"].as_str().unwrap()).unwrap();
    assert_eq!(direct_body, http_body);
    assert_eq!(http_body["items"], serde_json::json!([]));
}
