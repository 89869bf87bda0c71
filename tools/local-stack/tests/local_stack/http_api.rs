//! The HTTP API: routes from the template, JWT checks like API Gateway, orders-http behind it.

use local_stack::jwt;
use serde_json::{Value, json};

use crate::helpers::spawn_stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401_exactly_like_api_gateway() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
    let c = reqwest::Client::new();
    let url = format!("{}/v1/orders", stack.api_url);
    let now = chrono::Utc::now().timestamp();
    let expired = stack
        .key
        .sign(&json!({"sub": "a", "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "exp": now - 5}))
        .unwrap();
    let wrong_audience = stack
        .key
        .sign(&json!({"sub": "a", "iss": jwt::ISSUER, "aud": "someone-else", "exp": now + 60}))
        .unwrap();
    for auth in [
        None,
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {wrong_audience}")),
    ] {
        let mut req = c.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Unauthorized"}),
            "{auth:?}"
        );
    }
    let calls = stack
        .reporter
        .deliveries()
        .iter()
        .filter(|d| d.function != "-")
        .count();
    assert_eq!(
        calls, 0,
        "the function must not be invoked for a rejected token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_gets_404_not_found() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
    let r = reqwest::get(format!("{}/v1/nothing-here", stack.api_url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
    // A known path with a method the template does not route is not found either.
    let r = reqwest::Client::new()
        .delete(format!("{}/v1/orders", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_places_an_order_201_and_the_owner_reads_it_back() {
    let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
    let c = reqwest::Client::new();
    let token = stack.token("alice", &["shop/orders"]).unwrap();
    let r = c
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(&token)
        .header("idempotency-key", "k-1")
        .json(&json!({"lines": [{"sku": "SKU-1", "quantity": 2,
            "unit_price": {"amount": 1250, "currency": "EUR"}}], "card_token": "tok_approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let order: Value = r.json().await.unwrap();
    assert_eq!(
        order["customer_id"], "alice",
        "the sub claim reached the handler"
    );
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["total"], json!({"amount": 2500, "currency": "EUR"}));

    let r = c
        .get(format!("{}{location}", stack.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], order["id"]);

    let other = stack.token("mallory", &[]).unwrap();
    let r = c
        .get(format!("{}{location}", stack.api_url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another customer's order is not visible");
}
