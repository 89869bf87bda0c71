//! The notify events function: OrderConfirmed, OrderCancelled and PaymentRefunded each send
//! the customer one notification and publish NotificationSent. Each event notifies once (a
//! processed marker commits with the notification); other event types are acknowledged.

use chrono::Utc;
use kit::sqs::Message;

use crate::{
    EVENT_SOURCE,
    domain::{Notification, NotificationId, compose},
    ports::{Notifier, NotifyError},
};

/// Why a message must be retried (it becomes a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot build the outgoing event")]
    Contract(#[from] kit::events::ContractError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// Handles one message of the notify queue.
pub async fn handle<N: Notifier>(notifier: &N, message: Message) -> Result<(), ConsumerError> {
    let Some(draft) = compose(&message.event) else {
        tracing::warn!(
            event_type = message.event.event_type(),
            "event not for notify: acknowledged"
        );
        return Ok(());
    };
    let cause = &message.envelope;
    let event_id = cause.id.to_string();
    if notifier.is_processed(&event_id).await? {
        tracing::info!(event_id, "duplicate delivery: already processed");
        return Ok(());
    }
    let now = Utc::now();
    let notification = Notification::new(
        NotificationId::generate(),
        draft,
        notifier.channel(),
        &event_id,
        now,
    );
    let sent = cause.follow_up(EVENT_SOURCE, &notification.sent_event(), now)?;
    match notifier.send(&notification, &[sent]).await {
        Ok(()) => {
            kit::metrics::emit(
                crate::SERVICE,
                &[("template", notification.template.name())],
                &[kit::metrics::Metric::count("NotificationSent", 1)],
            );
            Ok(())
        }
        Err(NotifyError::AlreadyProcessed) => {
            tracing::info!(event_id, "duplicate delivery: already processed");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
