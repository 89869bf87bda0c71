//! The API's edges against the in-memory repository: per-customer limits (writes per window,
//! open orders, amounts) and hostile input (cursors, oversized strings and bodies, idempotency
//! keys that try to collide).

use base64::Engine;
use orders::{
    adapters::memory::MemoryOrders,
    config::{DEFAULT_MAX_OPEN_ORDERS, DEFAULT_WRITE_LIMIT, DEFAULT_WRITE_WINDOW_SECONDS},
};
use serde_json::{Value, json};

use crate::helpers::{Reply, get, order_body, place, post, send};

fn is_problem(reply: &Reply, status: u16, slug: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    let kind = reply.body["type"].as_str().unwrap_or_default();
    assert!(kind.ends_with(slug), "type {kind} is not {slug}");
}

fn line(amount: i64, quantity: i64, currency: &str) -> Value {
    json!({"sku": "SKU-1", "quantity": quantity, "unit_price": {"amount": amount, "currency": currency}})
}

fn order_of(lines: Vec<Value>) -> Value {
    json!({"lines": lines, "card_token": "tok_approve"})
}

fn fields(reply: &Reply) -> Vec<String> {
    reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_line_or_an_order_above_its_currencys_cap_is_unprocessable() {
    let orders = MemoryOrders::default();
    // 10,000.01 EUR on one line.
    let reply = send(
        &orders,
        post("/v1/orders", order_of(vec![line(1_000_001, 1, "EUR")])),
    )
    .await;
    is_problem(&reply, 422, "validation-error");
    assert_eq!(fields(&reply), ["lines[0]"]);
    // Within the line cap only because of the quantity: the line total counts.
    let reply = send(
        &orders,
        post("/v1/orders", order_of(vec![line(20_001, 50, "EUR")])),
    )
    .await;
    assert_eq!(fields(&reply), ["lines[0]"]);
    // Six lines of 9,000 EUR: each within the line cap, the order above 50,000 EUR.
    let reply = send(
        &orders,
        post("/v1/orders", order_of(vec![line(900_000, 1, "EUR"); 6])),
    )
    .await;
    is_problem(&reply, 422, "validation-error");
    assert_eq!(fields(&reply), ["total"]);
    // The caps are per currency: 1,000,000 JPY is a legal line, 1,500,001 JPY is not.
    let ok = send(
        &orders,
        post("/v1/orders", order_of(vec![line(1_000_000, 1, "JPY")])),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let reply = send(
        &orders,
        post("/v1/orders", order_of(vec![line(1_500_001, 1, "JPY")])),
    )
    .await;
    assert_eq!(fields(&reply), ["lines[0]"]);
}

#[tokio::test]
async fn a_customer_with_the_most_open_orders_cannot_place_another_until_one_closes() {
    let orders = MemoryOrders::default();
    let mut ids = Vec::new();
    for _ in 0..DEFAULT_MAX_OPEN_ORDERS {
        ids.push(place(&orders, "customer-1").await);
    }
    let refused = send(&orders, post("/v1/orders", order_body("tok_approve"))).await;
    is_problem(&refused, 409, "too-many-open-orders");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains(&DEFAULT_MAX_OPEN_ORDERS.to_string()),
        "{}",
        refused.body
    );
    // Another customer is not affected.
    place(&orders, "customer-2").await;
    // Closing one frees a place.
    let cancel = send(
        &orders,
        post(&format!("/v1/orders/{}/cancel", ids[0]), json!({})),
    )
    .await;
    assert_eq!(cancel.status, 200);
    place(&orders, "customer-1").await;
    assert_eq!(
        orders.outbox().len(),
        13,
        "11 placed, 1 cancelled, 1 more placed"
    );
}

#[tokio::test]
async fn a_customer_writing_faster_than_the_limit_gets_429_with_retry_after() {
    let orders = MemoryOrders::default();
    // 30 writes per 60 s window by default; place and cancel so no other limit interferes.
    // A window may end during the loop, so the 429 comes after 30 writes and at most 60.
    let limit = DEFAULT_WRITE_LIMIT;
    let mut writes = 0;
    let limited = loop {
        assert!(writes <= 2 * limit, "no 429 after {writes} writes");
        let placed = send(&orders, post("/v1/orders", order_body("tok_approve"))).await;
        writes += 1;
        if placed.status == 429 {
            break placed;
        }
        assert_eq!(placed.status, 201, "{}", placed.body);
        let id = placed.body["id"].as_str().unwrap().to_owned();
        let cancel = send(&orders, post(&format!("/v1/orders/{id}/cancel"), json!({}))).await;
        writes += 1;
        if cancel.status == 429 {
            break cancel;
        }
        assert_eq!(cancel.status, 200, "{}", cancel.body);
    };
    assert!(writes > limit, "limited after only {writes} writes");
    is_problem(&limited, 429, "too-many-requests");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=DEFAULT_WRITE_WINDOW_SECONDS).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    // Reads are not limited, and other customers keep writing.
    assert_eq!(send(&orders, get("/v1/orders")).await.status, 200);
    place(&orders, "customer-2").await;
}

/// A cursor as the API encodes them, around any text.
fn cursor(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn a_cursor_that_is_not_exactly_one_the_api_issued_is_a_bad_request() {
    let orders = MemoryOrders::default();
    for _ in 0..3 {
        place(&orders, "customer-1").await;
    }
    let first = send(&orders, get("/v1/orders").query(&[("limit", "1")])).await;
    let issued = first.body["next_cursor"].as_str().unwrap().to_owned();
    let ok = send(&orders, get("/v1/orders").query(&[("cursor", &issued)])).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let decoded = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&issued)
            .unwrap(),
    )
    .unwrap();
    let (time, id) = decoded.split_once('#').unwrap();
    let seconds = &time[..19];
    let huge_fraction = format!("{seconds}.{}Z#{id}", "1".repeat(1_100));
    for tampered in [
        cursor(&huge_fraction),
        cursor(&format!("{seconds}+00:00#{id}")),
        cursor(&format!("{time}#{}", id.to_uppercase())),
        cursor(&format!("{time}#{id}#more")),
        format!("{issued}="),
        "A".repeat(10_000),
    ] {
        let reply = send(&orders, get("/v1/orders").query(&[("cursor", &tampered)])).await;
        is_problem(&reply, 400, "bad-request");
        assert!(
            reply.body.to_string().len() < 1_000,
            "the cursor is not echoed: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_malformed_field_is_named_by_its_path_and_the_clients_input_is_not_echoed() {
    let orders = MemoryOrders::default();
    // Just below the body limit (kit's own test sends 100 kB to the parser).
    let huge = "x".repeat(60_000);
    let mut body = order_body("tok_approve");
    body["lines"][1]["quantity"] = json!(huge);
    let reply = send(&orders, post("/v1/orders", body)).await;
    is_problem(&reply, 400, "bad-request");
    let text = reply.body.to_string();
    assert!(
        text.len() < 1_000,
        "{} bytes: {}…",
        text.len(),
        &text[..300]
    );
    assert!(text.contains("lines[1].quantity"), "{text}");
    // An unknown field with a huge name is cut as well.
    let mut body = order_body("tok_approve");
    body[huge.as_str()] = json!(1);
    let reply = send(&orders, post("/v1/orders", body)).await;
    is_problem(&reply, 400, "bad-request");
    assert!(reply.body.to_string().len() < 1_000);
}

#[tokio::test]
async fn a_body_above_the_size_limit_is_refused_with_413_before_it_is_parsed() {
    let orders = MemoryOrders::default();
    let body = order_body(&"a".repeat(70 * 1024));
    let reply = send(&orders, post("/v1/orders", body)).await;
    is_problem(&reply, 413, "payload-too-large");
    let broken = "[".repeat(200 * 1024);
    let reply = send(&orders, post("/v1/orders", json!({})).raw_body(&broken)).await;
    is_problem(&reply, 413, "payload-too-large");
    assert!(orders.outbox().is_empty());
}

#[tokio::test]
async fn idempotency_keys_of_different_customers_never_collide_whatever_they_contain() {
    let orders = MemoryOrders::default();
    let first = send(
        &orders,
        post("/v1/orders", order_body("tok_approve"))
            .sub(Some("a#b"))
            .header("idempotency-key", "c"),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    // ("a", "b#c") joined with `#` reads like ("a#b", "c"): it must be its own key.
    let second = send(
        &orders,
        post("/v1/orders", order_body("tok_decline_card"))
            .sub(Some("a"))
            .header("idempotency-key", "b#c"),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_ne!(first.body["id"], second.body["id"]);
    assert_eq!(second.body["customer_id"], "a");
}
