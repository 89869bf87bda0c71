//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking.
//! Both record the notification (the built-in channel) and log it without personal data.

pub mod dynamodb;
pub mod memory;

use kit::dynamo::CommitError;

use crate::{domain::Notification, ports::NotifyError};

/// The channel of the built-in notifier: the notification is recorded and logged.
pub const RECORD_CHANNEL: &str = "record";

/// The sort value of a notification in "notifications by customer" (ids are UUID v7).
pub(crate) fn customer_sort_key(notification: &Notification) -> String {
    kit::page::sort_key(notification.sent_at, notification.id.as_str())
}

/// The log line of a sent notification: ids and template only, never the customer or the
/// rendered text.
pub(crate) fn log_sent(notification: &Notification) {
    tracing::info!(
        notification_id = %notification.id,
        order_id = notification.order_id,
        template = notification.template.name(),
        channel = notification.channel,
        "notification sent"
    );
}

/// What a failed send means to the service, whichever store failed it.
pub(crate) fn send_error(error: CommitError) -> NotifyError {
    match error {
        CommitError::AlreadyProcessed => NotifyError::AlreadyProcessed,
        error => NotifyError::Unavailable(Box::new(error)),
    }
}

/// Notifications are written once and never updated: their version is always 0.
impl kit::memory::Versioned for Notification {
    fn version(&self) -> u64 {
        0
    }
}
