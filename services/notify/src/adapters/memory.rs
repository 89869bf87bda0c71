//! The notifier and notification log in memory: a [`kit::memory::Table`], the twin of the
//! DynamoDB table (a notification commits atomically with its outbox events and its
//! processed-event marker), with the same error mapping as the DynamoDB adapter.

use kit::{
    events::Envelope,
    memory::{Change, Table},
};

use super::{RECORD_CHANNEL, customer_sort_key, log_sent, send_error};
use crate::{
    domain::{CustomerId, Notification},
    ports::{NotificationLog, Notifier, NotifyError, Page},
};

/// Notifications in memory.
#[derive(Debug, Default)]
pub struct MemoryNotifications {
    table: Table<Notification>,
}

impl MemoryNotifications {
    /// Every notification recorded so far, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        let mut all = self.table.select(|_| true);
        all.sort_by_key(customer_sort_key);
        all
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.table.outbox()
    }
}

impl Notifier for MemoryNotifications {
    fn channel(&self) -> &'static str {
        RECORD_CHANNEL
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, NotifyError> {
        Ok(self.table.is_processed(event_id))
    }

    async fn send(
        &self,
        notification: &Notification,
        events: &[Envelope],
    ) -> Result<(), NotifyError> {
        let change = Change::create(notification.id.as_str(), notification.clone())
            .publish(events)
            .processed(Some(&notification.event_id));
        self.table.commit(change).map_err(send_error)?;
        log_sent(notification);
        Ok(())
    }
}

impl NotificationLog for MemoryNotifications {
    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, NotifyError> {
        let mine: Vec<(String, Notification)> = self
            .table
            .select(|n| &n.customer_id == customer)
            .into_iter()
            .map(|n| (customer_sort_key(&n), n))
            .collect();
        let (notifications, next) = kit::page::in_memory(mine, limit, after);
        Ok(Page {
            notifications,
            next,
        })
    }
}
