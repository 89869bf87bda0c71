//! The transactional outbox: an event is written as an item of the service's own table in the
//! same `TransactWriteItems` as the state change it describes; the table's stream feeds the
//! relay ([`crate::relay`]), so a crash between write and publish delays an event, never loses it.
//! Next to the envelope an item keeps the X-Ray trace header of the work that wrote it
//! ([`crate::telemetry::trace_header`]), which the relay hands to EventBridge.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Deserialize;

use crate::{
    dynamo::{EXPIRES_AT, PK, SK, n, s},
    events::Envelope,
    telemetry,
};

/// Key prefix of outbox items; the stream mapping filters on it.
pub const PREFIX: &str = "OUTBOX#";
/// Outbox items expire three weeks after their event: longer than a relay DLQ keeps the
/// on-failure record that points at them (a stream record ages up to 6 hours before it goes to
/// the DLQ, which keeps it 14 days), so `redrive republish` still finds them, plus a week for
/// the operator. A test compares it with the templates (`infra/platform.yaml`, `services/*/template.yaml`).
pub const TTL_SECONDS: i64 = 21 * 24 * 3600;

/// Attribute of an outbox item holding the trace header of the work that wrote it.
pub const TRACE_HEADER: &str = "trace_header";

/// What an outbox item holds: the event, and the trace it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub envelope: Envelope,
    /// The X-Ray trace header of the request or message that caused the event; the relay
    /// sends it as the `PutEvents` entry's `TraceHeader`.
    pub trace_header: Option<String>,
}

/// Why an outbox item cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot encode the envelope")]
    Encode(#[source] serde_json::Error),
    #[error("cannot build the outbox put")]
    Build(#[source] aws_sdk_dynamodb::error::BuildError),
    #[error("the stream image is not an outbox record")]
    Decode(#[source] serde_dynamo::Error),
    #[error("the outbox record holds an invalid envelope")]
    Envelope(#[source] serde_json::Error),
}

/// The put of `envelope` into `table`'s outbox, to add to a state change's transaction.
pub fn put(table: &str, envelope: &Envelope) -> Result<TransactWriteItem, OutboxError> {
    let item = item(envelope)?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(OutboxError::Build)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The puts of every envelope of `events`, in order.
pub fn puts(table: &str, events: &[Envelope]) -> Result<Vec<TransactWriteItem>, OutboxError> {
    events.iter().map(|envelope| put(table, envelope)).collect()
}

/// The outbox item of `envelope`, with the current trace header when there is one.
pub fn item(envelope: &Envelope) -> Result<HashMap<String, AttributeValue>, OutboxError> {
    let json = serde_json::to_string(envelope).map_err(OutboxError::Encode)?;
    let mut item = HashMap::from([
        (PK.to_owned(), s(format!("{PREFIX}{}", envelope.id))),
        (SK.to_owned(), s("OUTBOX")),
        ("source".to_owned(), s(&envelope.source)),
        ("detail_type".to_owned(), s(&envelope.event_type)),
        ("envelope".to_owned(), s(json)),
        (
            EXPIRES_AT.to_owned(),
            n(envelope.time.timestamp() + TTL_SECONDS),
        ),
    ]);
    if let Some(header) = telemetry::trace_header() {
        item.insert(TRACE_HEADER.to_owned(), s(header));
    }
    Ok(item)
}

#[derive(Deserialize)]
struct Stored {
    pk: String,
    envelope: String,
    trace_header: Option<String>,
}

/// The record in a stream image, `None` when the image is not an outbox item.
pub fn decode(image: serde_dynamo::Item) -> Option<Result<Record, OutboxError>> {
    let is_outbox = matches!(
        image.get(PK),
        Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with(PREFIX)
    );
    if !is_outbox {
        return None;
    }
    Some(
        serde_dynamo::from_item::<_, Stored>(image)
            .map_err(OutboxError::Decode)
            .and_then(|stored| {
                debug_assert!(stored.pk.starts_with(PREFIX));
                let envelope =
                    serde_json::from_str(&stored.envelope).map_err(OutboxError::Envelope)?;
                Ok(Record {
                    envelope,
                    trace_header: stored.trace_header,
                })
            }),
    )
}

/// The record of a table item (as `GetItem`, `Query` or `Scan` return it), `None` when the
/// item is not an outbox item.
pub fn record_of(item: &HashMap<String, AttributeValue>) -> Option<Result<Record, OutboxError>> {
    let is_outbox = item
        .get(PK)
        .and_then(|pk| pk.as_s().ok())
        .is_some_and(|pk| pk.starts_with(PREFIX));
    if !is_outbox {
        return None;
    }
    let json = item
        .get("envelope")
        .and_then(|e| e.as_s().ok())
        .map_or("", String::as_str);
    let trace_header = item.get(TRACE_HEADER).and_then(|h| h.as_s().ok()).cloned();
    Some(
        serde_json::from_str(json)
            .map(|envelope| Record {
                envelope,
                trace_header,
            })
            .map_err(OutboxError::Envelope),
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::events::{Event, NotificationSent};

    fn envelope() -> Envelope {
        let event = Event::NotificationSent(NotificationSent {
            notification_id: "n".into(),
            customer_id: "c".into(),
            order_id: "o".into(),
            about: "OrderConfirmed".into(),
            channel: "record".into(),
            sent_at: Utc::now(),
        });
        Envelope::new("shop.notify", &event, "corr", None, Utc::now()).unwrap()
    }

    fn image(item: HashMap<String, AttributeValue>) -> serde_dynamo::Item {
        serde_dynamo::to_item(serde_dynamo::from_item::<_, serde_json::Value>(item).unwrap())
            .unwrap()
    }

    #[test]
    fn an_outbox_item_decodes_back_to_its_envelope() {
        let envelope = envelope();
        let record = decode(image(item(&envelope).unwrap())).unwrap().unwrap();
        assert_eq!(
            record,
            Record {
                envelope,
                trace_header: None
            }
        );
    }

    #[tokio::test]
    async fn an_event_written_during_traced_work_keeps_its_trace_header() {
        let header = "Root=1-6a2b3c4d-eeeeeeeeeeeeeeeeeeeeeeee;Parent=5555555555555555;Sampled=1";
        let envelope = envelope();
        let written = telemetry::invocation("req", Some(header), async { item(&envelope) })
            .await
            .unwrap();
        let record = decode(image(written.clone())).unwrap().unwrap();
        assert_eq!(record.trace_header.as_deref(), Some(header));
        assert_eq!(record.envelope, envelope);
        assert_eq!(
            record_of(&written)
                .unwrap()
                .unwrap()
                .trace_header
                .as_deref(),
            Some(header)
        );
    }

    #[test]
    fn every_event_gets_its_own_conditional_put() {
        let (a, b) = (envelope(), envelope());
        let writes = puts("t", &[a.clone(), b.clone()]).unwrap();
        let pks: Vec<_> = writes
            .iter()
            .map(|w| w.put().unwrap().item().get(PK).cloned())
            .collect();
        assert_eq!(
            pks,
            [
                Some(s(format!("{PREFIX}{}", a.id))),
                Some(s(format!("{PREFIX}{}", b.id)))
            ]
        );
    }

    #[test]
    fn a_table_item_gives_back_its_envelope() {
        let envelope = envelope();
        assert_eq!(
            record_of(&item(&envelope).unwrap())
                .unwrap()
                .unwrap()
                .envelope,
            envelope
        );
        let other = HashMap::from([(PK.to_owned(), s("ORDER#1"))]);
        assert!(record_of(&other).is_none());
    }

    #[test]
    fn other_items_are_not_outbox_records() {
        let image: serde_dynamo::Item =
            serde_dynamo::to_item(serde_json::json!({"pk": "ORDER#1", "sk": "ORDER"})).unwrap();
        assert!(decode(image).is_none());
    }
}
