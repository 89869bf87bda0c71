//! The events function: an OrderConfirmed is recorded once, whatever the redeliveries; a
//! malformed message fails alone.

use __name__::adapters::memory::MemoryRecords;
use serde_json::json;

use crate::helpers::{deliver, failed, order_confirmed};

#[tokio::test]
async fn a_confirmed_order_is_recorded_once_however_often_it_is_delivered() {
    let store = MemoryRecords::default();
    let event = order_confirmed("alice");
    for _ in 0..3 {
        let response = deliver(&store, std::slice::from_ref(&event)).await;
        assert!(failed(&response).is_empty(), "{response:?}");
    }
    let records = store.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].customer_id.as_str(), "alice");
    assert_eq!(
        records[0].order_id,
        event["detail"]["data"]["order_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_malformed_message_fails_alone() {
    let store = MemoryRecords::default();
    let response = deliver(&store, &[json!({"not": "an event"}), order_confirmed("bob")]).await;
    assert_eq!(failed(&response), ["m0"]);
    let records = store.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].customer_id.as_str(), "bob");
}
