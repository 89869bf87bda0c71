//! The notifier and notification log on the service's DynamoDB table (keys in
//! docs/architecture.md): `NOTIFICATION#<id>` items on the `gsi1` index by customer, written
//! in one `TransactWriteItems` with their outbox events and the processed marker of the event
//! that caused them.

use std::collections::HashMap;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use kit::{
    dynamo::{self, Entity, GSI1_PK, GSI1_SK, PK, SK, Transaction, s},
    events::Envelope,
    idempotency::{self, IdempotencyStore},
};

use super::{RECORD_CHANNEL, customer_sort_key, log_sent, send_error};
use crate::{
    domain::{CustomerId, Notification},
    ports::{NotificationLog, Notifier, NotifyError, Page},
};

/// Scope of the processed-event markers of the events function.
const PROCESSED_SCOPE: &str = "notify-events";
/// Notification items: `NOTIFICATION#<id>` / `NOTIFICATION`.
const NOTIFICATION: Entity = Entity {
    pk_prefix: "NOTIFICATION#",
    sk: "NOTIFICATION",
};

/// Notifications in DynamoDB: the built-in `record` channel.
#[derive(Debug, Clone)]
pub struct DynamoNotifications {
    client: Client,
    table: String,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> NotifyError {
    NotifyError::Unavailable(Box::new(error))
}

impl DynamoNotifications {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoNotifications {
            client,
            table: table.into(),
        }
    }

    fn item(notification: &Notification) -> Result<HashMap<String, AttributeValue>, NotifyError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(notification).map_err(unavailable)?;
        item.insert(
            PK.into(),
            s(format!("{}{}", NOTIFICATION.pk_prefix, notification.id)),
        );
        item.insert(SK.into(), s(NOTIFICATION.sk));
        item.insert(
            GSI1_PK.into(),
            s(dynamo::owner_pk(&notification.customer_id)),
        );
        item.insert(GSI1_SK.into(), s(customer_sort_key(notification)));
        Ok(item)
    }
}

impl Notifier for DynamoNotifications {
    fn channel(&self) -> &'static str {
        RECORD_CHANNEL
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, NotifyError> {
        let key = idempotency::Key::new(PROCESSED_SCOPE, event_id).map_err(unavailable)?;
        let store = idempotency::DynamoIdempotency::new(self.client.clone(), self.table.clone());
        Ok(store.get(&key).await.map_err(unavailable)?.is_some())
    }

    async fn send(
        &self,
        notification: &Notification,
        events: &[Envelope],
    ) -> Result<(), NotifyError> {
        let now = chrono::Utc::now().timestamp();
        let change = Transaction::new(&self.table)
            .create(Self::item(notification)?)
            .and_then(|t| t.publish(events))
            .and_then(|t| t.processed(PROCESSED_SCOPE, Some(&notification.event_id), now))
            .map_err(unavailable)?;
        change.commit(&self.client).await.map_err(send_error)?;
        log_sent(notification);
        Ok(())
    }
}

impl NotificationLog for DynamoNotifications {
    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, NotifyError> {
        let page = dynamo::query_owner(
            &self.client,
            &self.table,
            NOTIFICATION,
            &dynamo::owner_pk(customer),
            limit,
            after,
        )
        .await
        .map_err(unavailable)?;
        Ok(Page {
            notifications: serde_dynamo::from_items(page.items).map_err(unavailable)?,
            next: page.next,
        })
    }
}
