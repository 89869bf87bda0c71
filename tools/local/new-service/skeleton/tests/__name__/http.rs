//! `GET /v1/__name__`: a customer's own records, newest first, page by page.

use __name__::adapters::memory::MemoryRecords;
use serde_json::Value;

use crate::helpers::{call, deliver, failed, list_request, order_confirmed};

#[tokio::test]
async fn a_customer_lists_only_their_own_records_page_by_page() {
    let store = MemoryRecords::default();
    for sub in ["alice", "alice", "alice", "bob"] {
        let response = deliver(&store, &[order_confirmed(sub)]).await;
        assert!(failed(&response).is_empty(), "{response:?}");
    }
    let (status, first) = call(&store, list_request(Some("alice"), &[("limit", "2")])).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (status, second) = call(
        &store,
        list_request(Some("alice"), &[("limit", "2"), ("cursor", &cursor)]),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let item = &second["items"][0];
    for field in ["order_id", "total", "confirmed_at"] {
        assert!(item.get(field).is_some(), "{field} missing: {item}");
    }
}

#[tokio::test]
async fn a_request_without_a_caller_or_with_a_bad_cursor_is_a_problem_not_a_panic() {
    let store = MemoryRecords::default();
    let (status, body) = call(&store, list_request(None, &[])).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = call(&store, list_request(Some("alice"), &[("cursor", "nope")])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["type"].as_str().is_some(), "problem+json: {body}");
}
