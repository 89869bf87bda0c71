//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking.

pub mod dynamodb;
pub mod memory;

use crate::domain::Order;

/// The sort value of an order in "orders by customer" (ids are UUID v7, so it sorts by time).
pub(crate) fn customer_sort_key(order: &Order) -> String {
    kit::page::sort_key(order.created_at, order.id.as_str())
}
