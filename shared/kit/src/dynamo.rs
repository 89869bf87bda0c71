//! The single-table conventions every service table follows (see docs/architecture.md) and
//! `TransactWriteItems` with its failures classified.

use aws_sdk_dynamodb::{
    Client,
    error::SdkError,
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, TransactWriteItem},
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

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// How a `TransactWriteItems` call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransactError {
    /// One or more condition expressions failed; `failed` holds their item indexes.
    #[error("transaction cancelled by failed conditions on items {failed:?}")]
    ConditionFailed { failed: Vec<usize> },
    #[error("transaction failed")]
    Other(#[source] Box<SdkError<TransactWriteItemsError>>),
}

/// Writes `items` in one transaction, telling failed conditions apart from other errors.
pub async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), TransactError> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => {
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            {
                let failed: Vec<usize> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect();
                if !failed.is_empty() {
                    return Err(TransactError::ConditionFailed { failed });
                }
            }
            Err(TransactError::Other(Box::new(error)))
        }
    }
}
