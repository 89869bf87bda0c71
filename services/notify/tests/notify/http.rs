//! `GET /v1/notifications`: a customer's own notifications, newest first, page by page.

use notify::adapters::memory::MemoryNotifications;
use serde_json::Value;

use crate::helpers::{call, deliver, event_for, failed, list_request};

/// A store where `sub` was told about `fixtures`, in this order.
async fn notified(store: &MemoryNotifications, sub: &str, fixtures: &[&str]) {
    for fixture in fixtures {
        let response = deliver(store, &[event_for(fixture, sub)]).await;
        assert!(failed(&response).is_empty(), "{response:?}");
    }
}

fn templates(body: &Value) -> Vec<&str> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["template"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_customer_lists_their_own_notifications_newest_first() {
    let store = MemoryNotifications::default();
    let all = ["order-confirmed", "order-cancelled", "payment-refunded"];
    notified(&store, "alice", &all).await;
    let (status, body) = call(&store, list_request(Some("alice"), &[])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        templates(&body),
        ["payment-refunded", "order-cancelled", "order-confirmed"]
    );
    assert_eq!(body["next_cursor"], Value::Null);
    let item = &body["items"][0];
    for field in [
        "id", "order_id", "about", "channel", "subject", "body", "sent_at",
    ] {
        assert!(item[field].is_string(), "{field} missing from {item}");
    }
    assert!(item.get("customer_id").is_none() && item.get("event_id").is_none());
}

#[tokio::test]
async fn pages_follow_the_limit_and_the_cursor_until_the_last_one() {
    let store = MemoryNotifications::default();
    let all = ["order-confirmed", "order-cancelled", "payment-refunded"];
    notified(&store, "alice", &all).await;
    let (status, first) = call(&store, list_request(Some("alice"), &[("limit", "2")])).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(templates(&first), ["payment-refunded", "order-cancelled"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a cursor after a full page");
    let query = [("limit", "2"), ("cursor", cursor)];
    let (status, second) = call(&store, list_request(Some("alice"), &query)).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(templates(&second), ["order-confirmed"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn another_customers_notifications_are_not_visible() {
    let store = MemoryNotifications::default();
    notified(&store, "alice", &["order-confirmed"]).await;
    notified(&store, "bob", &["order-cancelled"]).await;
    let (status, body) = call(&store, list_request(Some("bob"), &[])).await;
    assert_eq!(status, 200);
    assert_eq!(templates(&body), ["order-cancelled"]);
    let (_, nobody) = call(&store, list_request(Some("carol"), &[])).await;
    assert_eq!(nobody["items"], serde_json::json!([]));
}

#[tokio::test]
async fn a_request_without_a_sub_claim_is_unauthorized() {
    let store = MemoryNotifications::default();
    let (status, body) = call(&store, list_request(None, &[])).await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn a_token_without_the_customer_scope_is_forbidden() {
    let store = MemoryNotifications::default();
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/list-notifications.json")).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = "openid email".into();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, body) = call(&store, request).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["title"], "Forbidden");
}

#[tokio::test]
async fn a_bad_limit_or_a_foreign_cursor_is_a_bad_request() {
    let store = MemoryNotifications::default();
    let bad = [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "ten"),
        ("cursor", "bm90LWEtY3Vyc29y"),
    ];
    for pair in bad {
        let (status, body) = call(&store, list_request(Some("alice"), &[pair])).await;
        assert_eq!(status, 400, "{pair:?}: {body}");
        assert_eq!(
            body["type"].as_str().map(|t| t.ends_with("bad-request")),
            Some(true)
        );
    }
}
