//! The __name__ events function: each OrderConfirmed is recorded once (a processed marker
//! commits with the record); other event types are acknowledged.

use kit::sqs::Message;

use crate::{
    domain::Record,
    ports::{RecordStore, StoreError},
};

/// Why a message must be retried (it becomes a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handles one message of the __name__ queue.
pub async fn handle<S: RecordStore>(store: &S, message: Message) -> Result<(), ConsumerError> {
    let event_id = message.envelope.id.to_string();
    let Some(record) = Record::of(&message.event, &event_id) else {
        tracing::warn!(
            event_type = message.event.event_type(),
            "event not for __name__: acknowledged"
        );
        return Ok(());
    };
    match store.record(&record).await {
        Ok(()) => {
            tracing::info!(order_id = record.order_id, "recorded");
            Ok(())
        }
        Err(StoreError::AlreadyProcessed) => {
            tracing::info!(event_id, "duplicate delivery: already processed");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
