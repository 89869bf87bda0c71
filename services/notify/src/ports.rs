//! What the notify service needs from the outside world.

use std::future::Future;

use kit::events::Envelope;

use crate::domain::{CustomerId, Notification};

/// A page of a customer's notifications, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub notifications: Vec<Notification>,
    /// Opaque cursor for the next page, `None` on the last one.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The event that caused the notification was already handled (its marker exists).
    #[error("the event was already processed")]
    AlreadyProcessed,
    #[error("the notification store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Delivers notifications. The built-in one records them in the service's table (and logs
/// them without personal data); a real channel such as SES is one adapter away: claim the
/// event id with [`kit::idempotency::IdempotencyStore`], send, then record as here.
pub trait Notifier: Send + Sync {
    /// The channel name carried in NotificationSent, e.g. `record`.
    fn channel(&self) -> &'static str;

    /// Whether the event with this id already produced its notification.
    fn is_processed(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, NotifyError>> + Send;

    /// Sends `notification` and commits with it `events` and the processed marker of the
    /// event that caused it (`notification.event_id`) — all or nothing;
    /// [`NotifyError::AlreadyProcessed`] when the marker exists.
    fn send(
        &self,
        notification: &Notification,
        events: &[Envelope],
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

/// The record of sent notifications, for their owners to read.
pub trait NotificationLog: Send + Sync {
    /// A customer's notifications, newest first, at most `limit`, after the sort key `after`
    /// (decoded from a client's cursor by [`kit::page::params`]).
    fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page, NotifyError>> + Send;
}
