//! The `Notifier` and `NotificationLog` contract, run against both adapters (memory and
//! DynamoDB on moto), so the in-memory twin every handler test uses cannot drift.

use notify::{
    adapters::{dynamodb::DynamoNotifications, memory::MemoryNotifications},
    domain::CustomerId,
    ports::{NotificationLog, Notifier, NotifyError},
};

use crate::dynamodb::{notification, table};

async fn an_event_notifies_once_and_a_duplicate_commits_nothing<S>(store: &S)
where
    S: Notifier + NotificationLog,
{
    let sub = uuid::Uuid::now_v7().to_string();
    let event_id = uuid::Uuid::now_v7().to_string();
    let (first, sent) = notification(&sub, &event_id, 0);
    assert!(!store.is_processed(&event_id).await.unwrap());
    store.send(&first, &[sent]).await.unwrap();
    assert!(store.is_processed(&event_id).await.unwrap());
    let (again, resent) = notification(&sub, &event_id, 0);
    let duplicate = store.send(&again, &[resent]).await;
    assert!(
        matches!(duplicate, Err(NotifyError::AlreadyProcessed)),
        "{duplicate:?}"
    );
    let page = store
        .list_for_customer(&CustomerId::new(&sub), 10, None)
        .await
        .unwrap();
    assert_eq!(page.notifications, [first]);
}

async fn a_customers_notifications_page_newest_first<S>(store: &S)
where
    S: Notifier + NotificationLog,
{
    let sub = uuid::Uuid::now_v7().to_string();
    let mut sent = Vec::new();
    for minutes_ago in [30, 20, 10] {
        let (n, e) = notification(&sub, &uuid::Uuid::now_v7().to_string(), minutes_ago);
        store.send(&n, &[e]).await.unwrap();
        sent.push(n);
    }
    let customer = CustomerId::new(&sub);
    let first = store.list_for_customer(&customer, 2, None).await.unwrap();
    assert_eq!(first.notifications, [sent[2].clone(), sent[1].clone()]);
    let cursor = first.next.expect("a cursor after a full page");
    let after = kit::page::decode_cursor(&cursor).unwrap();
    let second = store
        .list_for_customer(&customer, 2, Some(&after))
        .await
        .unwrap();
    assert_eq!(second.notifications, [sent[0].clone()]);
    assert_eq!(second.next, None);
}

async fn dynamo() -> DynamoNotifications {
    let (client, name) = table().await;
    DynamoNotifications::new(client, &name)
}

testkit::contract!(
    memory: MemoryNotifications::default(),
    dynamodb: dynamo(),
    cases: [
        an_event_notifies_once_and_a_duplicate_commits_nothing,
        a_customers_notifications_page_newest_first,
    ]
);
