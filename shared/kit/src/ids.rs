//! The ids every service shares: an order id (a UUID, parsed at the edge) and a customer id
//! (the `sub` claim of the caller's token).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order id: a UUID (v7, so ids sort by creation time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    pub fn generate() -> Self {
        OrderId(Uuid::now_v7().to_string())
    }

    /// Parses an id from a path or an event; `None` when it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(|id| OrderId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The customer: the `sub` claim of their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn new(sub: impl Into<String>) -> Self {
        CustomerId(sub.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uuids_are_order_ids_and_they_are_normalised() {
        assert!(OrderId::parse("not-a-uuid").is_none());
        let id = OrderId::generate();
        assert_eq!(OrderId::parse(id.as_str()), Some(id));
        let upper = OrderId::parse("0190A0E0-0000-7000-8000-000000000001").unwrap();
        assert_eq!(upper.as_str(), "0190a0e0-0000-7000-8000-000000000001");
    }
}
