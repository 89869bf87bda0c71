//! The __name__ domain: pure rules, no AWS or Lambda types.

use chrono::{DateTime, Utc};
use kit::{events::Event, money::Money};
use serde::{Deserialize, Serialize};

pub use kit::ids::CustomerId;

/// What the service keeps of one confirmed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub order_id: String,
    pub customer_id: CustomerId,
    pub total: Money,
    pub confirmed_at: DateTime<Utc>,
    /// The id of the event that caused it: each event is recorded at most once.
    pub event_id: String,
}

impl Record {
    /// The record of `event` (whose envelope id is `event_id`), if it is one this service keeps.
    pub fn of(event: &Event, event_id: &str) -> Option<Self> {
        match event {
            Event::OrderConfirmed(confirmed) => Some(Record {
                order_id: confirmed.order_id.clone(),
                customer_id: CustomerId::new(&confirmed.customer_id),
                total: confirmed.total.clone(),
                confirmed_at: confirmed.confirmed_at,
                event_id: event_id.to_owned(),
            }),
            _ => None,
        }
    }
}
