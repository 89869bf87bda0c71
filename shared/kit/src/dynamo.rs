//! The single-table conventions every service table follows (see docs/architecture.md) and
//! `TransactWriteItems` with its failures classified.

use std::collections::HashMap;

use crate::telemetry::Step as _;

use aws_sdk_dynamodb::{
    Client,
    error::SdkError,
    operation::{query::QueryError, transact_write_items::TransactWriteItemsError},
    types::{AttributeValue, Put, TransactWriteItem},
};

/// Partition key attribute of every table.
pub const PK: &str = "pk";
/// Sort key attribute of every table.
pub const SK: &str = "sk";
/// The secondary index every table has, for "items by owner, newest first".
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The TTL attribute (epoch seconds) of idempotency and outbox records.
pub const EXPIRES_AT: &str = "expires_at";

/// The `gsi1pk` of everything a customer owns: `CUSTOMER#<sub>`.
pub fn owner_pk(customer: &crate::ids::CustomerId) -> String {
    format!("CUSTOMER#{}", customer.as_str())
}

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conditional put of `item` into `table`, to add to a transaction; `values` are the
/// condition's `:placeholders`.
pub fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: &str,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (name, value) in values {
        put = put.expression_attribute_values(*name, value.clone());
    }
    Ok(TransactWriteItem::builder().put(put.build()?).build())
}

/// How a `TransactWriteItems` call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransactError {
    /// One or more condition expressions failed; `failed` holds their item indexes.
    #[error("transaction cancelled by failed conditions on items {failed:?}")]
    ConditionFailed { failed: Vec<usize> },
    /// Another transaction was writing one of the items at the same time
    /// (`TransactionConflict`): nothing was written and the whole transaction may be retried
    /// after reading the items again.
    #[error("transaction cancelled by a concurrent transaction on items {items:?}")]
    Conflict { items: Vec<usize> },
    #[error("transaction failed")]
    Other(#[source] Box<SdkError<TransactWriteItemsError>>),
}

/// Writes `items` in one transaction, telling failed conditions apart from other errors.
pub async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), TransactError> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .step("dynamodb.TransactWriteItems")
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => {
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            {
                let with_code = |code: &str| -> Vec<usize> {
                    cancelled
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some(code))
                        .map(|(i, _)| i)
                        .collect()
                };
                let failed = with_code("ConditionalCheckFailed");
                if !failed.is_empty() {
                    return Err(TransactError::ConditionFailed { failed });
                }
                let items = with_code("TransactionConflict");
                if !items.is_empty() {
                    return Err(TransactError::Conflict { items });
                }
            }
            Err(TransactError::Other(Box::new(error)))
        }
    }
}

/// One state change of a service table as one `TransactWriteItems`, built from named writes:
/// the entity (new, or a versioned update), its outbox records, the processed marker of the
/// event that caused it and the idempotency record of the request that caused it. Its commit
/// names what failed, so no service maps cancellation reasons by item position.
#[derive(Debug, Clone)]
pub struct Transaction {
    table: String,
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
}

/// What an item of a [`Transaction`] is, to name the conflict its condition raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    NewEntity,
    UpdatedEntity,
    Outbox,
    Processed,
    Idempotency,
    Guard,
}

/// Why a [`Transaction`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("cannot build the write")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    #[error(transparent)]
    Marker(#[from] crate::idempotency::ProcessedMarkerError),
    #[error("the expected version {0} is out of range")]
    Version(u64),
}

/// Why a [`Transaction`] did not commit; nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The event that caused the change was already applied (its processed marker exists).
    #[error("the event was already processed")]
    AlreadyProcessed,
    /// A live record holds the request's idempotency key.
    #[error("the idempotency key is already used")]
    IdempotencyKeyTaken,
    /// A guard's condition failed: a limit the change must stay within was reached.
    #[error("a guard of the transaction refused it")]
    GuardRefused,
    /// The new entity exists already.
    #[error("the entity already exists")]
    EntityExists,
    /// The entity is no longer at the expected version.
    #[error("the entity was changed concurrently")]
    EntityChanged,
    /// Another transaction was writing one of the items (`TransactionConflict`): read again
    /// and retry.
    #[error("a concurrent transaction wrote the same items")]
    Concurrent,
    #[error("the transaction failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Transaction {
    /// An empty change of `table`.
    pub fn new(table: &str) -> Self {
        Transaction {
            table: table.to_owned(),
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn push(mut self, role: Role, item: TransactWriteItem) -> Self {
        self.items.push(item);
        self.roles.push(role);
        self
    }

    /// Writes `item` as a new entity: [`CommitError::EntityExists`] if its keys are taken.
    pub fn create(self, item: HashMap<String, AttributeValue>) -> Result<Self, TransactionError> {
        let write = put(&self.table, item, "attribute_not_exists(pk)", &[])?;
        Ok(self.push(Role::NewEntity, write))
    }

    /// Writes `item` over the entity if its `version` is still `expected`:
    /// [`CommitError::EntityChanged`] otherwise.
    pub fn update(
        self,
        item: HashMap<String, AttributeValue>,
        expected: u64,
    ) -> Result<Self, TransactionError> {
        let version = i64::try_from(expected).map_err(|_| TransactionError::Version(expected))?;
        let write = put(
            &self.table,
            item,
            "version = :expected",
            &[(":expected", n(version))],
        )?;
        Ok(self.push(Role::UpdatedEntity, write))
    }

    /// Adds the outbox records of `events` (see [`crate::outbox`]).
    pub fn publish(mut self, events: &[crate::events::Envelope]) -> Result<Self, TransactionError> {
        for write in crate::outbox::puts(&self.table, events)? {
            self = self.push(Role::Outbox, write);
        }
        Ok(self)
    }

    /// Adds the processed marker of `event_id` in `scope`, when given:
    /// [`CommitError::AlreadyProcessed`] if it exists.
    pub fn processed(
        self,
        scope: &str,
        event_id: Option<&str>,
        now: i64,
    ) -> Result<Self, TransactionError> {
        let Some(event_id) = event_id else {
            return Ok(self);
        };
        let write = crate::idempotency::put_processed(&self.table, scope, event_id, now)?;
        Ok(self.push(Role::Processed, write))
    }

    /// Adds the idempotency record of a request, when given:
    /// [`CommitError::IdempotencyKeyTaken`] if a live one holds the key.
    pub fn idempotency(
        self,
        record: Option<(&crate::idempotency::Key, &str, &serde_json::Value)>,
        ttl: std::time::Duration,
        now: i64,
    ) -> Result<Self, TransactionError> {
        let Some((key, fingerprint, response)) = record else {
            return Ok(self);
        };
        let write =
            crate::idempotency::put_completed(&self.table, key, fingerprint, response, ttl, now)?;
        Ok(self.push(Role::Idempotency, write))
    }

    /// Adds a write on another item that commits with the change, e.g. a counter whose condition
    /// keeps a limit: [`CommitError::GuardRefused`] when its condition fails.
    pub fn guard(self, write: TransactWriteItem) -> Self {
        self.push(Role::Guard, write)
    }

    /// Commits every write or none, naming the conflict when a condition failed: a processed
    /// marker first (a duplicate delivery), then an idempotency key, then a guard, then the
    /// entity.
    pub async fn commit(self, client: &Client) -> Result<(), CommitError> {
        let roles = self.roles;
        match transact(client, self.items).await {
            Ok(()) => Ok(()),
            Err(TransactError::ConditionFailed { failed }) => {
                let failed: Vec<Role> = failed
                    .iter()
                    .filter_map(|&i| roles.get(i).copied())
                    .collect();
                Err(if failed.contains(&Role::Processed) {
                    CommitError::AlreadyProcessed
                } else if failed.contains(&Role::Idempotency) {
                    CommitError::IdempotencyKeyTaken
                } else if failed.contains(&Role::Guard) {
                    CommitError::GuardRefused
                } else if failed.contains(&Role::NewEntity) {
                    CommitError::EntityExists
                } else if failed.contains(&Role::UpdatedEntity) {
                    CommitError::EntityChanged
                } else {
                    CommitError::Failed(format!("unexpected condition failure: {failed:?}").into())
                })
            }
            Err(TransactError::Conflict { .. }) => Err(CommitError::Concurrent),
            Err(error) => Err(CommitError::Failed(Box::new(error))),
        }
    }
}

/// A kind of item in a table: keys `<pk_prefix><id>` / `<sk>`, and a `gsi1sk` from
/// [`crate::page::sort_key`] (so it ends in `#<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    pub pk_prefix: &'static str,
    pub sk: &'static str,
}

/// A page of raw items, newest first, and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPage {
    pub items: Vec<HashMap<String, AttributeValue>>,
    pub next: Option<String>,
}

/// One page of the `entity` items of `owner` (their `gsi1pk`) on the `gsi1` index, newest
/// first, at most `limit`, after the sort key `after` (from [`crate::page::params`]).
pub async fn query_owner(
    client: &Client,
    table: &str,
    entity: Entity,
    owner: &str,
    limit: u32,
    after: Option<&str>,
) -> Result<ItemPage, SdkError<QueryError>> {
    let output = client
        .query()
        .table_name(table)
        .index_name(GSI1)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", GSI1_PK)
        .expression_attribute_values(":pk", s(owner))
        .scan_index_forward(false)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .set_exclusive_start_key(after.map(|after| start_key(entity, owner, after)))
        .send()
        .step("dynamodb.Query")
        .await?;
    let next = output
        .last_evaluated_key
        .and_then(|key| key.get(GSI1_SK).and_then(|v| v.as_s().ok()).cloned())
        .map(|sort_key| crate::page::encode_cursor(&sort_key));
    Ok(ItemPage {
        items: output.items.unwrap_or_default(),
        next,
    })
}

/// The `gsi1` key of the item with sort key `after`: index keys plus the table keys.
fn start_key(entity: Entity, owner: &str, after: &str) -> HashMap<String, AttributeValue> {
    let id = after.rsplit('#').next().unwrap_or_default();
    HashMap::from([
        (GSI1_PK.to_owned(), s(owner)),
        (GSI1_SK.to_owned(), s(after)),
        (PK.to_owned(), s(format!("{}{id}", entity.pk_prefix))),
        (SK.to_owned(), s(entity.sk)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DynamoDB client whose every call is answered with `status` and the JSON `body` by a
    /// one-shot local server.
    async fn answering(status: u16, body: &'static str) -> Client {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0_u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        Client::from_conf(config)
    }

    fn one_put() -> Vec<TransactWriteItem> {
        let item = HashMap::from([(PK.to_owned(), s("X#1")), (SK.to_owned(), s("X"))]);
        vec![put("t", item, "attribute_not_exists(pk)", &[]).unwrap()]
    }

    #[tokio::test]
    async fn a_transaction_cancelled_by_a_concurrent_transaction_is_a_conflict_not_an_unknown_error()
     {
        let client = answering(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message":"Transaction cancelled [None, TransactionConflict]",
                "CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict",
                "Message":"Transaction is ongoing for the item"}]}"#,
        )
        .await;
        let error = transact(&client, one_put()).await.unwrap_err();
        assert!(
            matches!(&error, TransactError::Conflict { items } if items == &[1]),
            "TransactionConflict must be classified, got {error:?}"
        );
    }

    #[test]
    fn a_start_key_names_the_index_and_the_table_keys_of_the_last_item() {
        let entity = Entity {
            pk_prefix: "ORDER#",
            sk: "ORDER",
        };
        let key = start_key(entity, "CUSTOMER#c1", "2026-01-01T00:00:00.000000Z#abc");
        assert_eq!(key[GSI1_PK], s("CUSTOMER#c1"));
        assert_eq!(key[GSI1_SK], s("2026-01-01T00:00:00.000000Z#abc"));
        assert_eq!(key[PK], s("ORDER#abc"));
        assert_eq!(key[SK], s("ORDER"));
    }

    #[test]
    fn a_put_carries_its_table_item_condition_and_values() {
        let item = HashMap::from([(PK.to_owned(), s("X#1"))]);
        let write = put("t", item, "version = :v", &[(":v", n(3))]).unwrap();
        let put = write.put().unwrap();
        assert_eq!(put.table_name(), "t");
        assert_eq!(put.item().get(PK), Some(&s("X#1")));
        assert_eq!(put.condition_expression(), Some("version = :v"));
        assert_eq!(
            put.expression_attribute_values().and_then(|v| v.get(":v")),
            Some(&n(3))
        );
    }
}
