//! The DynamoDB adapter against moto: a notification commits with its outbox event and its
//! processed marker, a duplicate commits nothing, and the log pages through `gsi1`.

use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};
use kit::events::Envelope;
use notify::{
    adapters::dynamodb::DynamoNotifications,
    domain::{CustomerId, Notification, NotificationId, Template},
    ports::{NotificationLog, Notifier, NotifyError},
};

pub(crate) async fn table() -> (Client, String) {
    let config = testkit::sdk_config().await;
    let client = Client::new(&config);
    let name = testkit::unique("notify");
    testkit::create_service_table(&client, &name).await;
    (client, name)
}

pub(crate) fn notification(
    sub: &str,
    event_id: &str,
    minutes_ago: i64,
) -> (Notification, Envelope) {
    let draft = notify::domain::Draft {
        customer_id: CustomerId::new(sub),
        order_id: uuid::Uuid::now_v7().to_string(),
        template: Template::OrderConfirmed,
        subject: "Your order is confirmed".into(),
        body: "Total: 12.50 EUR".into(),
    };
    let at = Utc::now() - Duration::minutes(minutes_ago);
    let notification = Notification::new(NotificationId::generate(), draft, "record", event_id, at);
    let sent = Envelope::new(
        notify::EVENT_SOURCE,
        &notification.sent_event(),
        "corr",
        Some(event_id),
        at,
    )
    .unwrap();
    (notification, sent)
}

async fn item(client: &Client, table: &str, pk: String, sk: &str) -> bool {
    client
        .get_item()
        .table_name(table)
        .key("pk", kit::dynamo::s(pk))
        .key("sk", kit::dynamo::s(sk))
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

#[tokio::test]
async fn a_notification_commits_with_its_outbox_event_and_a_duplicate_commits_nothing() {
    let (client, name) = table().await;
    let store = DynamoNotifications::new(client.clone(), &name);
    let event_id = uuid::Uuid::now_v7().to_string();
    let (first, sent) = notification("alice", &event_id, 0);
    assert!(!store.is_processed(&event_id).await.unwrap());

    store
        .send(&first, std::slice::from_ref(&sent))
        .await
        .unwrap();
    assert!(store.is_processed(&event_id).await.unwrap());
    assert!(
        item(
            &client,
            &name,
            format!("NOTIFICATION#{}", first.id),
            "NOTIFICATION"
        )
        .await
    );
    assert!(item(&client, &name, format!("OUTBOX#{}", sent.id), "OUTBOX").await);

    let (again, resent) = notification("alice", &event_id, 0);
    let duplicate = store.send(&again, std::slice::from_ref(&resent)).await;
    assert!(
        matches!(duplicate, Err(NotifyError::AlreadyProcessed)),
        "{duplicate:?}"
    );
    assert!(
        !item(
            &client,
            &name,
            format!("NOTIFICATION#{}", again.id),
            "NOTIFICATION"
        )
        .await
    );
    assert!(!item(&client, &name, format!("OUTBOX#{}", resent.id), "OUTBOX").await);

    let page = store
        .list_for_customer(&CustomerId::new("alice"), 10, None)
        .await
        .unwrap();
    assert_eq!(page.notifications, [first]);
}

#[tokio::test]
async fn a_customers_notifications_page_newest_first_through_the_index() {
    let (client, name) = table().await;
    let store = DynamoNotifications::new(client, &name);
    let mut sent = Vec::new();
    for minutes_ago in [30, 20, 10] {
        let (n, e) = notification("alice", &uuid::Uuid::now_v7().to_string(), minutes_ago);
        store.send(&n, &[e]).await.unwrap();
        sent.push(n);
    }
    let (other, e) = notification("bob", &uuid::Uuid::now_v7().to_string(), 0);
    store.send(&other, &[e]).await.unwrap();

    let alice = CustomerId::new("alice");
    let first = store.list_for_customer(&alice, 2, None).await.unwrap();
    assert_eq!(first.notifications, [sent[2].clone(), sent[1].clone()]);
    let cursor = first.next.expect("a cursor after a full page");
    let after = kit::page::decode_cursor(&cursor).unwrap();
    let second = store
        .list_for_customer(&alice, 2, Some(&after))
        .await
        .unwrap();
    assert_eq!(second.notifications, [sent[0].clone()]);
}
