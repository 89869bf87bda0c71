//! The record store in memory: a [`kit::memory::Table`], the twin of the DynamoDB table (a
//! record commits atomically with its processed-event marker), with the same error mapping.

use kit::memory::{Change, Table};

use super::{customer_sort_key, store_error};
use crate::{
    domain::{CustomerId, Record},
    ports::{Page, RecordStore, StoreError},
};

/// Records in memory.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    table: Table<Record>,
}

impl MemoryRecords {
    /// Every record so far, oldest first.
    pub fn records(&self) -> Vec<Record> {
        let mut all = self.table.select(|_| true);
        all.sort_by_key(customer_sort_key);
        all
    }
}

impl RecordStore for MemoryRecords {
    async fn record(&self, record: &Record) -> Result<(), StoreError> {
        let change =
            Change::create(&record.order_id, record.clone()).processed(Some(&record.event_id));
        self.table.commit(change).map_err(store_error)
    }

    async fn list_for_customer(
        &self,
        customer: &CustomerId,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let mine: Vec<(String, Record)> = self
            .table
            .select(|r| &r.customer_id == customer)
            .into_iter()
            .map(|r| (customer_sort_key(&r), r))
            .collect();
        let (records, next) = kit::page::in_memory(mine, limit, after);
        Ok(Page { records, next })
    }
}
