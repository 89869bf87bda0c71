//! The notifier and notification log in memory, with the same rules as DynamoDB: a
//! notification commits atomically with its outbox events and its processed-event marker.

use std::{
    collections::HashSet,
    sync::{Mutex, MutexGuard, PoisonError},
};

use kit::events::Envelope;

use super::{RECORD_CHANNEL, customer_sort_key, log_sent};
use crate::{
    domain::{CustomerId, Notification},
    ports::{NotificationLog, Notifier, NotifyError, Page},
};

#[derive(Debug, Default)]
struct State {
    notifications: Vec<Notification>,
    outbox: Vec<Envelope>,
    processed: HashSet<String>,
}

/// Notifications in memory.
#[derive(Debug, Default)]
pub struct MemoryNotifications {
    state: Mutex<State>,
}

impl MemoryNotifications {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every notification recorded so far, in order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.state().notifications.clone()
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.state().outbox.clone()
    }
}

impl Notifier for MemoryNotifications {
    fn channel(&self) -> &'static str {
        RECORD_CHANNEL
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, NotifyError> {
        Ok(self.state().processed.contains(event_id))
    }

    async fn send(
        &self,
        notification: &Notification,
        events: &[Envelope],
    ) -> Result<(), NotifyError> {
        let mut state = self.state();
        if !state.processed.insert(notification.event_id.clone()) {
            return Err(NotifyError::AlreadyProcessed);
        }
        state.notifications.push(notification.clone());
        state.outbox.extend_from_slice(events);
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
            .state()
            .notifications
            .iter()
            .filter(|n| &n.customer_id == customer)
            .map(|n| (customer_sort_key(n), n.clone()))
            .collect();
        let (notifications, next) = kit::page::in_memory(mine, limit, after);
        Ok(Page {
            notifications,
            next,
        })
    }
}
