//! The record store on the service's DynamoDB table: `RECORD#<order id>` items on the `gsi1`
//! index by customer, written in one `TransactWriteItems` with the processed marker of the event
//! that caused them.

use std::collections::HashMap;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use kit::dynamo::{self, Entity, GSI1_PK, GSI1_SK, PK, SK, Transaction, s};

use super::{customer_sort_key, store_error};
use crate::{
    domain::{CustomerId, Record},
    ports::{Page, RecordStore, StoreError},
};

/// Scope of the processed-event markers of the events function.
const PROCESSED_SCOPE: &str = "__name__-events";
/// Record items: `RECORD#<order id>` / `RECORD`.
const RECORD: Entity = Entity {
    pk_prefix: "RECORD#",
    sk: "RECORD",
};

/// Records in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoRecords {
    client: Client,
    table: String,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

impl DynamoRecords {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRecords {
            client,
            table: table.into(),
        }
    }

    fn item(record: &Record) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record).map_err(unavailable)?;
        item.insert(PK.into(), s(format!("{}{}", RECORD.pk_prefix, record.order_id)));
        item.insert(SK.into(), s(RECORD.sk));
        item.insert(GSI1_PK.into(), s(dynamo::owner_pk(&record.customer_id)));
        item.insert(GSI1_SK.into(), s(customer_sort_key(record)));
        Ok(item)
    }
}

impl RecordStore for DynamoRecords {
    async fn record(&self, record: &Record) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        let change = Transaction::new(&self.table)
            .create(Self::item(record)?)
            .and_then(|t| t.processed(PROCESSED_SCOPE, Some(&record.event_id), now))
            .map_err(unavailable)?;
        change.commit(&self.client).await.map_err(store_error)
    }

    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let page = dynamo::query_owner(
            &self.client,
            &self.table,
            RECORD,
            &dynamo::owner_pk(customer),
            limit,
            after,
        )
        .await
        .map_err(unavailable)?;
        Ok(Page {
            records: serde_dynamo::from_items(page.items).map_err(unavailable)?,
            next: page.next,
        })
    }
}
