//! The orders HTTP API against the in-memory repository: every route, every 4xx.

use orders::adapters::memory::MemoryOrders;
use serde_json::json;

use crate::helpers::{assert_matches_schema, get, order_body, place, post, send};

#[tokio::test]
async fn placing_an_order_stores_it_pending_and_emits_order_placed() {
    let orders = MemoryOrders::default();
    let reply = send(
        &orders,
        post("/v1/orders", order_body("tok_approve")).header("x-correlation-id", "corr-42"),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["status"], "PENDING");
    assert_eq!(
        reply.body["total"],
        json!({"amount": 2999, "currency": "EUR"})
    );
    assert_eq!(reply.body["customer_id"], "customer-1");
    assert!(
        reply.body.get("card_token").is_none(),
        "the card token is not echoed"
    );
    let id = reply.body["id"].as_str().unwrap();
    assert_eq!(
        reply.headers["location"],
        format!("/v1/orders/{id}").as_str()
    );
    assert_eq!(reply.headers["x-correlation-id"], "corr-42");

    let outbox = orders.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].event_type, "OrderPlaced");
    assert_eq!(outbox[0].correlation_id, "corr-42");
    assert_eq!(outbox[0].data["order_id"], id);
    assert_eq!(outbox[0].data["card_token"], "tok_approve");
    assert_matches_schema(&outbox[0]);
}

#[tokio::test]
async fn an_order_can_be_read_back_by_its_owner() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let reply = send(&orders, get(&format!("/v1/orders/{id}"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["id"], id.as_str());
}

#[tokio::test]
async fn another_customers_order_is_not_found_but_an_admin_may_read_it() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let stranger = send(
        &orders,
        get(&format!("/v1/orders/{id}")).sub(Some("customer-2")),
    )
    .await;
    assert_eq!(stranger.status, 404);
    assert_eq!(stranger.body["title"], "Not found");
    let admin = send(
        &orders,
        get(&format!("/v1/orders/{id}"))
            .sub(Some("ops"))
            .scope("shop/orders shop/admin"),
    )
    .await;
    assert_eq!(admin.status, 200);
}

#[tokio::test]
async fn unknown_and_malformed_order_ids_are_not_found() {
    let orders = MemoryOrders::default();
    for path in [
        "/v1/orders/not-a-uuid",
        "/v1/orders/0190f5a4-0000-7000-8000-000000000000",
    ] {
        let reply = send(&orders, get(path)).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn a_request_without_a_sub_claim_is_unauthorized() {
    let orders = MemoryOrders::default();
    let reply = send(&orders, get("/v1/orders").sub(None)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["status"], 401);
}

#[tokio::test]
async fn a_token_without_the_customer_scope_is_forbidden_on_every_route_even_an_admins() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    for scope in ["", "shop/admin", "openid email"] {
        for request in [
            post("/v1/orders", json!({})),
            get("/v1/orders"),
            get(&format!("/v1/orders/{id}")),
            post(&format!("/v1/orders/{id}/cancel"), json!({})),
        ] {
            let reply = send(&orders, request.sub(Some("customer-1")).scope(scope)).await;
            assert_eq!(reply.status, 403, "scope {scope:?}: {:?}", reply.body);
            assert_eq!(reply.body["title"], "Forbidden");
        }
    }
}

#[tokio::test]
async fn bad_json_and_unknown_fields_are_bad_requests() {
    let orders = MemoryOrders::default();
    let broken = send(
        &orders,
        post("/v1/orders", json!({})).raw_body("{\"lines\": ["),
    )
    .await;
    assert_eq!(broken.status, 400);
    let mut body = order_body("tok_approve");
    body["coupon"] = json!("FREE");
    let unknown = send(&orders, post("/v1/orders", body)).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["errors"][0]["field"], "coupon");
    assert!(
        unknown.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `coupon`")
    );
    let mut nested = order_body("tok_approve");
    nested["lines"][0]["discount"] = json!(1);
    assert_eq!(send(&orders, post("/v1/orders", nested)).await.status, 400);
    assert!(orders.outbox().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_unsupported_media_type() {
    let orders = MemoryOrders::default();
    let reply = send(
        &orders,
        post("/v1/orders", order_body("tok_approve")).header("content-type", "text/plain"),
    )
    .await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn rule_violations_are_unprocessable_and_list_every_field() {
    let orders = MemoryOrders::default();
    let cases = [
        (
            json!({"lines": [], "card_token": "tok_approve"}),
            vec!["lines"],
        ),
        (
            json!({"lines": [{"sku": "A", "quantity": 0, "unit_price": {"amount": 100, "currency": "EUR"}}], "card_token": "tok_approve"}),
            vec!["lines[0].quantity"],
        ),
        (
            json!({"lines": [{"sku": "A", "quantity": -3, "unit_price": {"amount": -1, "currency": "EUR"}}], "card_token": "tok_approve"}),
            vec!["lines[0].quantity", "lines[0].unit_price.amount"],
        ),
        (
            json!({"lines": [{"sku": "A", "quantity": 1, "unit_price": {"amount": 100, "currency": "XXX"}}], "card_token": "tok_approve"}),
            vec!["lines[0].unit_price.currency"],
        ),
        (
            json!({"lines": [{"sku": "A", "quantity": 1000, "unit_price": {"amount": 9_223_372_036_854_775_807_i64, "currency": "EUR"}}], "card_token": "tok_approve"}),
            vec!["lines[0]"],
        ),
    ];
    for (body, fields) in cases {
        let reply = send(&orders, post("/v1/orders", body.clone())).await;
        assert_eq!(reply.status, 422, "{body}");
        let got: Vec<&str> = reply.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    assert!(
        orders.outbox().is_empty(),
        "nothing is stored for an invalid order"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_response() {
    let orders = MemoryOrders::default();
    let request =
        || post("/v1/orders", order_body("tok_approve")).header("idempotency-key", "key-1");
    let first = send(&orders, request()).await;
    let second = send(&orders, request()).await;
    assert_eq!(first.status, 201);
    assert_eq!(second.status, 201);
    assert_eq!(first.body, second.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(orders.outbox().len(), 1, "one order, one event");
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_refused() {
    let orders = MemoryOrders::default();
    let first = send(
        &orders,
        post("/v1/orders", order_body("tok_approve")).header("idempotency-key", "key-1"),
    )
    .await;
    assert_eq!(first.status, 201);
    let other = send(
        &orders,
        post("/v1/orders", order_body("tok_decline_card")).header("idempotency-key", "key-1"),
    )
    .await;
    assert_eq!(other.status, 422);
    assert!(
        other.body["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused")
    );
    // Keys are per customer: another customer may use the same key.
    let stranger = send(
        &orders,
        post("/v1/orders", order_body("tok_approve"))
            .header("idempotency-key", "key-1")
            .sub(Some("customer-2")),
    )
    .await;
    assert_eq!(stranger.status, 201);
}

#[tokio::test]
async fn an_unusable_idempotency_key_is_a_bad_request() {
    let orders = MemoryOrders::default();
    let long = "k".repeat(200);
    let reply = send(
        &orders,
        post("/v1/orders", order_body("tok_approve")).header("idempotency-key", &long),
    )
    .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn listing_returns_only_the_callers_orders_newest_first_page_by_page() {
    let orders = MemoryOrders::default();
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(place(&orders, "customer-1").await);
    }
    place(&orders, "customer-2").await;
    mine.reverse();

    let first = send(&orders, get("/v1/orders").query(&[("limit", "2")])).await;
    assert_eq!(first.status, 200);
    let ids = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), mine[..2]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = send(
        &orders,
        get("/v1/orders").query(&[("limit", "2"), ("cursor", &cursor)]),
    )
    .await;
    assert_eq!(ids(&second), mine[2..4]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = send(
        &orders,
        get("/v1/orders").query(&[("limit", "2"), ("cursor", &cursor)]),
    )
    .await;
    assert_eq!(ids(&last), mine[4..]);
    assert!(last.body["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_limits_and_cursors_are_bad_requests() {
    let orders = MemoryOrders::default();
    for query in [
        [("limit", "0")],
        [("limit", "101")],
        [("limit", "ten")],
        [("cursor", "not-ours")],
    ] {
        let reply = send(&orders, get("/v1/orders").query(&query)).await;
        assert_eq!(reply.status, 400, "{query:?}");
    }
}

#[tokio::test]
async fn a_customer_can_cancel_their_pending_order_once() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let cancel = send(&orders, post(&format!("/v1/orders/{id}/cancel"), json!({}))).await;
    assert_eq!(cancel.status, 200);
    assert_eq!(cancel.body["status"], "CANCELLED");
    assert_eq!(cancel.body["cancellation_reason"], "customer_requested");
    let again = send(&orders, post(&format!("/v1/orders/{id}/cancel"), json!({}))).await;
    assert_eq!(again.status, 409);
    let events: Vec<String> = orders
        .outbox()
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(events, ["OrderPlaced", "OrderCancelled"]);
    assert_matches_schema(&orders.outbox()[1]);
}

#[tokio::test]
async fn another_customer_cannot_cancel_an_order_not_even_an_admin() {
    let orders = MemoryOrders::default();
    let id = place(&orders, "customer-1").await;
    let stranger = send(
        &orders,
        post(&format!("/v1/orders/{id}/cancel"), json!({})).sub(Some("customer-2")),
    )
    .await;
    assert_eq!(stranger.status, 404);
    let admin = send(
        &orders,
        post(&format!("/v1/orders/{id}/cancel"), json!({}))
            .sub(Some("ops"))
            .scope("shop/orders shop/admin"),
    )
    .await;
    assert_eq!(admin.status, 404);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let orders = MemoryOrders::default();
    let missing = send(&orders, get("/v1/nothing-here")).await;
    assert_eq!(missing.status, 404);
    let wrong = send(&orders, Req::delete("/v1/orders")).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.headers["allow"], "POST, GET");
}

use crate::helpers::Req;
