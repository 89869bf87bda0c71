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
async fn a_token_without_the_customer_scope_gets_403_on_every_route_exactly_like_api_gateway() {
    let stack = spawn_stack(|o| {
        o.only = vec![
            "orders-http".into(),
            "payments-http".into(),
            "notify-http".into(),
        ];
    })
    .await;
    let c = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let id_token = stack
        .key
        .sign(
            &json!({"sub": "alice", "iss": jwt::ISSUER, "aud": jwt::AUDIENCE,
            "exp": now + 60, "token_use": "id", "email": "alice@example.com"}),
        )
        .unwrap();
    let refused = [
        stack.token("alice", &[]).unwrap(),
        stack.token("alice", &["shop/admin"]).unwrap(),
        stack
            .token("alice", &["openid", "email", "shop/orders/x"])
            .unwrap(),
        id_token,
    ];
    let routes: Vec<(String, String)> = stack
        .functions
        .values()
        .flat_map(|f| f.spec().routes.clone())
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        routes.len(),
        6,
        "every route of the three HTTP functions: {routes:?}"
    );
    let some_id = "0190a0e0-0000-7000-8000-000000000001";
    for (method, path) in &routes {
        let path = path.replace("{id}", some_id).replace("{orderId}", some_id);
        let url = format!("{}{path}", stack.api_url);
        for token in &refused {
            let r = c
                .request(method.parse().unwrap(), &url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                json!({"message": "Forbidden"}),
                "{method} {path}"
            );
        }
        // The scope in an `scp` array claim (as some issuers put it) is accepted.
        let scp = stack
            .key
            .sign(
                &json!({"sub": "alice", "iss": jwt::ISSUER, "aud": jwt::AUDIENCE,
                "exp": now + 60, "scp": ["shop/orders"]}),
            )
            .unwrap();
        let r = c
            .request(method.parse().unwrap(), &url)
            .bearer_auth(&scp)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 403, "{method} {path} with the scope in scp");
    }
    let calls = stack
        .reporter
        .deliveries()
        .iter()
        .filter(|d| d.function != "-")
        .count();
    assert_eq!(
        calls,
        routes.len(),
        "only the requests with the scope reach a function"
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

    let other = stack.token("mallory", &["shop/orders"]).unwrap();
    let r = c
        .get(format!("{}{location}", stack.api_url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another customer's order is not visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_limits_set_by_template_parameters_hold_and_a_large_body_gets_413() {
    let stack = spawn_stack(|o| {
        o.only = vec!["orders-http".into()];
        o.parameters
            .insert("MaxOpenOrdersPerCustomer".into(), "2".into());
        o.parameters.insert("CustomerWriteLimit".into(), "3".into());
        o.parameters
            .insert("CustomerWriteWindowSeconds".into(), "3600".into());
    })
    .await;
    let c = reqwest::Client::new();
    let token = stack.token("quinn", &["shop/orders"]).unwrap();
    let body = json!({"lines": [{"sku": "SKU-1", "quantity": 1,
        "unit_price": {"amount": 100, "currency": "EUR"}}], "card_token": "tok_approve"});
    let place = || {
        c.post(format!("{}/v1/orders", stack.api_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let problem = |r: &reqwest::Response| {
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    // Nothing runs in the stack but orders-http: the orders stay PENDING.
    assert_eq!(place().await.unwrap().status(), 201);
    assert_eq!(place().await.unwrap().status(), 201);
    let r = place().await.unwrap();
    assert_eq!(r.status(), 409, "the third open order");
    assert_eq!(problem(&r).as_deref(), Some("application/problem+json"));
    let p: Value = r.json().await.unwrap();
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/too-many-open-orders"),
        "{p}"
    );
    // That refused order used the third write of the window: the fourth is refused.
    let r = place().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(problem(&r).as_deref(), Some("application/problem+json"));
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");

    let r = c
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("x".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(problem(&r).as_deref(), Some("application/problem+json"));
}
