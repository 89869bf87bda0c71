//! A notification: a rendered message to one customer about one of their orders, and the
//! NotificationSent event that announces it.

use std::fmt;

use chrono::{DateTime, Utc};
use kit::events::{Event, NotificationSent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CustomerId, Draft, Template};

/// A notification id: a UUID v7, so ids sort by sending time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(String);

impl NotificationId {
    pub fn generate() -> Self {
        NotificationId(Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A notification as sent (and recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    pub customer_id: CustomerId,
    pub order_id: String,
    pub template: Template,
    /// The event type it is about, e.g. `OrderConfirmed`.
    pub about: String,
    /// How it was delivered, e.g. `record`.
    pub channel: String,
    pub subject: String,
    pub body: String,
    /// The id of the event that caused it: each event notifies at most once.
    pub event_id: String,
    pub sent_at: DateTime<Utc>,
}

impl Notification {
    /// The notification of `draft`, sent on `channel` at `now` because of event `event_id`.
    pub fn new(
        id: NotificationId,
        draft: Draft,
        channel: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Notification {
            id,
            customer_id: draft.customer_id,
            order_id: draft.order_id,
            template: draft.template,
            about: draft.template.about().to_owned(),
            channel: channel.to_owned(),
            subject: draft.subject,
            body: draft.body,
            event_id: event_id.to_owned(),
            sent_at: now,
        }
    }

    /// The NotificationSent event announcing it.
    pub fn sent_event(&self) -> Event {
        Event::NotificationSent(NotificationSent {
            notification_id: self.id.to_string(),
            customer_id: self.customer_id.as_str().to_owned(),
            order_id: self.order_id.clone(),
            about: self.about.clone(),
            channel: self.channel.clone(),
            sent_at: self.sent_at,
        })
    }
}
