//! The DynamoDB adapter against moto: a record commits with its processed marker, a duplicate
//! commits nothing, and a customer's records page through `gsi1`.

use __name__::{
    adapters::dynamodb::DynamoRecords,
    domain::{CustomerId, Record},
    ports::{RecordStore, StoreError},
};
use aws_sdk_dynamodb::Client;

async fn store() -> DynamoRecords {
    let config = testkit::sdk_config().await;
    let client = Client::new(&config);
    let name = testkit::unique("__name__");
    testkit::create_service_table(&client, &name).await;
    DynamoRecords::new(client, name)
}

fn record(sub: &str, minutes_ago: i64) -> Record {
    let event_id = uuid::Uuid::now_v7().to_string();
    Record {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer_id: CustomerId::new(sub),
        total: serde_json::from_value(serde_json::json!({"amount": 1250, "currency": "EUR"}))
            .unwrap(),
        confirmed_at: chrono::Utc::now() - chrono::Duration::minutes(minutes_ago),
        event_id,
    }
}

#[tokio::test]
async fn a_record_commits_once_and_pages_newest_first() {
    let store = store().await;
    let older = record("alice", 2);
    let newer = record("alice", 1);
    store.record(&older).await.unwrap();
    store.record(&newer).await.unwrap();
    store.record(&record("bob", 1)).await.unwrap();
    assert!(matches!(
        store.record(&older).await,
        Err(StoreError::AlreadyProcessed)
    ));

    let alice = CustomerId::new("alice");
    let first = store.list_for_customer(&alice, 1, None).await.unwrap();
    assert_eq!(first.records, [newer]);
    let cursor = first.next.expect("a cursor after a full page");
    let after = kit::page::decode_cursor(&cursor).expect("a cursor the API issues");
    let second = store
        .list_for_customer(&alice, 1, Some(&after))
        .await
        .unwrap();
    assert_eq!(second.records, [older]);
}
