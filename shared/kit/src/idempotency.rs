//! Idempotency records: a conditional put of a key with a TTL, where "already done" returns
//! the stored result.
//!
//! Two ways to use them, one record format:
//! - **in the same transaction as the effect** ([`put_completed`]) when the effect is a write
//!   to the service's own table: the key and the effect commit together (HTTP `POST` with an
//!   `Idempotency-Key`, consumers that only change their table);
//! - **as a guard around an outside effect** ([`IdempotencyStore`]: claim → effect →
//!   complete, or release on failure) when the effect leaves the table (a payment provider,
//!   a notification channel).

use std::{collections::HashMap, future::Future, sync::Mutex, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    error::SdkError,
    operation::put_item::PutItemError,
    types::{AttributeValue, Put, TransactWriteItem},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dynamo::{EXPIRES_AT, PK, SK, n, s};
use crate::telemetry::Step as _;

/// Key prefix of idempotency items.
pub const PREFIX: &str = "IDEMPOTENCY#";
/// How long a completed HTTP request can be replayed.
pub const HTTP_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a processed event id is remembered: longer than any copy of the event can still be
/// delivered — a replay from the bus archive (`EventArchiveRetentionDays`, at most 30 days) that
/// then waits in a queue or DLQ (at most 14 days) — plus a day. A test compares it with
/// the templates (`infra/platform.yaml`, `services/*/template.yaml`).
pub const EVENT_TTL: Duration = Duration::from_secs(45 * 24 * 3600);

const CONDITION: &str = "attribute_not_exists(pk) OR expires_at < :now";

/// A validated idempotency key within a scope (e.g. one customer's `POST /v1/orders`).
///
/// The record's partition key is `IDEMPOTENCY#<scope>#<key>` (or `…#<scope>#<caller>#<key>`),
/// with `%` and `#` escaped as `%25` and `%23` in the scope and caller: neither contains a `#`
/// then, so no two `(scope, caller, key)` give the same record even when the caller and the key
/// contain `#`. Scopes and callers without `%` or `#` read as they did before the escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

/// A client-supplied key we refuse (empty, too long, or not visible ASCII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key must be 1 to 128 visible ASCII characters")]
pub struct InvalidKey;

impl Key {
    /// `key` within `scope` (e.g. `orders-events` and an event id).
    pub fn new(scope: &str, key: &str) -> Result<Key, InvalidKey> {
        Self::check(key)?;
        Ok(Key(format!("{PREFIX}{}#{key}", escape(scope))))
    }

    /// `key` of one `caller` (a token's `sub`) within `scope`: two callers never share a key.
    pub fn for_caller(scope: &str, caller: &str, key: &str) -> Result<Key, InvalidKey> {
        Self::check(key)?;
        Ok(Key(format!(
            "{PREFIX}{}#{}#{key}",
            escape(scope),
            escape(caller)
        )))
    }

    fn check(key: &str) -> Result<(), InvalidKey> {
        if !(1..=128).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidKey);
        }
        Ok(())
    }

    /// The partition key value of the record.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `part` with `%` and `#` percent-encoded, so it holds no `#`.
fn escape(part: &str) -> std::borrow::Cow<'_, str> {
    if part.contains(['%', '#']) {
        part.replace('%', "%25").replace('#', "%23").into()
    } else {
        part.into()
    }
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Hash of the request the key was first used with.
    pub fingerprint: String,
    pub status: Status,
    /// The stored result (e.g. the HTTP response), once completed.
    pub response: Option<Value>,
    /// Epoch seconds after which the record no longer counts.
    pub expires_at: i64,
}

impl Record {
    /// A claim held for `lease`.
    pub fn in_progress(fingerprint: &str, lease: Duration) -> Self {
        Record {
            fingerprint: fingerprint.to_owned(),
            status: Status::InProgress,
            response: None,
            expires_at: now() + lease.as_secs() as i64,
        }
    }

    /// A completed effect with its `response`, remembered for `ttl`.
    pub fn completed(fingerprint: &str, response: &Value, ttl: Duration) -> Self {
        Record {
            fingerprint: fingerprint.to_owned(),
            status: Status::Completed,
            response: Some(response.clone()),
            expires_at: now() + ttl.as_secs() as i64,
        }
    }
}

/// A SHA-256 fingerprint of the parts of a request that make it "the same request".
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The put of a completed record, to add to the effect's own transaction; it fails its
/// condition when a live record with this key exists.
pub fn put_completed(
    table: &str,
    key: &Key,
    fingerprint: &str,
    response: &Value,
    ttl: Duration,
    now: i64,
) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
    let record = Record {
        fingerprint: fingerprint.to_owned(),
        status: Status::Completed,
        response: Some(response.clone()),
        expires_at: now + ttl.as_secs() as i64,
    };
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(to_item(key, &record)))
        .condition_expression(CONDITION)
        .expression_attribute_values(":now", n(now))
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The put of a processed-event marker (`scope`, e.g. `orders-events`, and the event id) to
/// add to the transaction of the event's effect: a redelivered event fails its condition, so
/// its effect never commits twice.
pub fn put_processed(
    table: &str,
    scope: &str,
    event_id: &str,
    now: i64,
) -> Result<TransactWriteItem, ProcessedMarkerError> {
    let key = Key::new(scope, event_id)?;
    Ok(put_completed(
        table,
        &key,
        "",
        &Value::Null,
        EVENT_TTL,
        now,
    )?)
}

/// Why a processed-event marker cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ProcessedMarkerError {
    #[error("the event id is not a valid idempotency key")]
    Key(#[from] InvalidKey),
    #[error("cannot build the marker put")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
}

fn to_item(key: &Key, record: &Record) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (PK.to_owned(), s(key.as_str())),
        (SK.to_owned(), s("IDEMPOTENCY")),
        ("fingerprint".to_owned(), s(&record.fingerprint)),
        (
            "status".to_owned(),
            s(match record.status {
                Status::InProgress => "IN_PROGRESS",
                Status::Completed => "COMPLETED",
            }),
        ),
        (EXPIRES_AT.to_owned(), n(record.expires_at)),
    ]);
    if let Some(response) = &record.response {
        item.insert("response".to_owned(), s(response.to_string()));
    }
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Record> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    Some(Record {
        fingerprint: text("fingerprint")?.clone(),
        status: match text("status")?.as_str() {
            "COMPLETED" => Status::Completed,
            _ => Status::InProgress,
        },
        response: text("response").and_then(|r| serde_json::from_str(r).ok()),
        expires_at: item.get(EXPIRES_AT)?.as_n().ok()?.parse().ok()?,
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is ours: do the effect, then `complete` (or `release` on failure).
    Acquired,
    /// The effect was already done; here is its record.
    Done(Record),
    /// Another invocation holds the key and its lease has not expired.
    InProgress,
}

/// A failure of the idempotency store itself (not a duplicate).
#[derive(Debug, thiserror::Error)]
#[error("idempotency store failed")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Claim → effect → complete, for effects outside the service's table.
pub trait IdempotencyStore: Send + Sync {
    /// Takes `key` for `lease` unless a live record holds it.
    fn claim(
        &self,
        key: &Key,
        fingerprint: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Marks `key` done with `response`, remembered for `ttl`.
    fn complete(
        &self,
        key: &Key,
        fingerprint: &str,
        response: &Value,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives `key` up after a failed effect, so a retry can claim it at once.
    fn release(&self, key: &Key) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The live record of `key`, if any.
    fn get(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;
}

/// Idempotency records in the service's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoIdempotency {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, key: &Key, record: &Record) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(key, record)))
            .condition_expression(CONDITION)
            .expression_attribute_values(":now", n(now()))
            .send()
            .step("dynamodb.PutItem")
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError(Box::new(e))),
        }
    }
}

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(
        &self,
        key: &Key,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let record = Record::in_progress(fingerprint, lease);
        if self.put(key, &record).await? {
            return Ok(Claim::Acquired);
        }
        Ok(match self.get(key).await? {
            Some(record) if record.status == Status::Completed => Claim::Done(record),
            Some(_) => Claim::InProgress,
            // Expired between our put and get: the next delivery will claim it.
            None => Claim::InProgress,
        })
    }

    async fn complete(
        &self,
        key: &Key,
        fingerprint: &str,
        response: &Value,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record = Record::completed(fingerprint, response, ttl);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(key, &record)))
            .send()
            .step("dynamodb.PutItem")
            .await
            .map_err(|e| StoreError(Box::new(e)))?;
        Ok(())
    }

    async fn release(&self, key: &Key) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .key(SK, s("IDEMPOTENCY"))
            .send()
            .step("dynamodb.DeleteItem")
            .await
            .map_err(|e| StoreError(Box::new(e)))?;
        Ok(())
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .key(SK, s("IDEMPOTENCY"))
            .consistent_read(true)
            .send()
            .step("dynamodb.GetItem")
            .await
            .map_err(|e| StoreError(Box::new(e)))?;
        Ok(output
            .item()
            .and_then(from_item)
            .filter(|r| r.expires_at >= now()))
    }
}

/// The same behaviour in memory, for handler tests and the in-memory adapters.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<Key, Record>>,
}

impl MemoryIdempotency {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `record` unless a live one exists; true when stored. The in-memory twin of
    /// [`put_completed`] for adapters that emulate the transaction.
    pub fn insert_if_absent(&self, key: &Key, record: Record) -> Result<(), Record> {
        let mut records = self.records();
        match records.get(key) {
            Some(existing) if existing.expires_at >= now() => Err(existing.clone()),
            _ => {
                records.insert(key.clone(), record);
                Ok(())
            }
        }
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn claim(
        &self,
        key: &Key,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let record = Record::in_progress(fingerprint, lease);
        Ok(match self.insert_if_absent(key, record) {
            Ok(()) => Claim::Acquired,
            Err(existing) if existing.status == Status::Completed => Claim::Done(existing),
            Err(_) => Claim::InProgress,
        })
    }

    async fn complete(
        &self,
        key: &Key,
        fingerprint: &str,
        response: &Value,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.records()
            .insert(key.clone(), Record::completed(fingerprint, response, ttl));
        Ok(())
    }

    async fn release(&self, key: &Key) -> Result<(), StoreError> {
        self.records().remove(key);
        Ok(())
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        Ok(self
            .records()
            .get(key)
            .filter(|r| r.expires_at >= now())
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_and_validated() {
        assert_eq!(
            Key::for_caller("orders-http", "c1", "abc")
                .unwrap()
                .as_str(),
            "IDEMPOTENCY#orders-http#c1#abc"
        );
        assert_eq!(
            Key::new("orders-events", "e-1").unwrap().as_str(),
            "IDEMPOTENCY#orders-events#e-1"
        );
        assert_eq!(Key::new("s", ""), Err(InvalidKey));
        assert_eq!(Key::new("s", "has space"), Err(InvalidKey));
        assert_eq!(Key::new("s", &"k".repeat(129)), Err(InvalidKey));
    }

    #[test]
    fn callers_and_keys_containing_hashes_never_share_a_record() {
        let key = |caller, key| Key::for_caller("s", caller, key).unwrap();
        assert_ne!(key("a#b", "c"), key("a", "b#c"));
        assert_ne!(key("a%23b", "c"), key("a#b", "c"));
        assert_ne!(
            Key::new("s#a", "b").unwrap(),
            Key::for_caller("s", "a", "b").unwrap()
        );
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"x"]), fingerprint(&[b"x"]));
    }

    #[tokio::test]
    async fn a_claimed_key_is_in_progress_then_done_then_free_after_release() {
        let store = MemoryIdempotency::default();
        let key = Key::new("s", "k").unwrap();
        let lease = Duration::from_secs(60);
        assert_eq!(
            store.claim(&key, "f", lease).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            store.claim(&key, "f", lease).await.unwrap(),
            Claim::InProgress
        );
        store
            .complete(&key, "f", &serde_json::json!({"ok": true}), lease)
            .await
            .unwrap();
        let Claim::Done(record) = store.claim(&key, "f", lease).await.unwrap() else {
            panic!("expected Done")
        };
        assert_eq!(record.response, Some(serde_json::json!({"ok": true})));
        store.release(&key).await.unwrap();
        assert_eq!(
            store.claim(&key, "f", lease).await.unwrap(),
            Claim::Acquired
        );
    }

    #[test]
    fn a_processed_marker_is_a_completed_record_kept_for_the_event_ttl() {
        let write = put_processed("t", "notify-events", "e-1", 100).unwrap();
        let put = write.put().unwrap();
        let record = from_item(put.item()).unwrap();
        assert_eq!(put.item()[PK], s("IDEMPOTENCY#notify-events#e-1"));
        assert_eq!(record.status, Status::Completed);
        assert_eq!(record.expires_at, 100 + EVENT_TTL.as_secs() as i64);
        assert_eq!(put.condition_expression(), Some(CONDITION));
        assert!(matches!(
            put_processed("t", "s", "has space", 0),
            Err(ProcessedMarkerError::Key(_))
        ));
    }

    #[test]
    fn records_round_trip_through_items() {
        let key = Key::new("s", "k").unwrap();
        let record = Record {
            fingerprint: "f".into(),
            status: Status::Completed,
            response: Some(serde_json::json!({"status": 201})),
            expires_at: 42,
        };
        assert_eq!(from_item(&to_item(&key, &record)), Some(record));
    }
}
