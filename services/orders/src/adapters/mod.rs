//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking.

pub mod dynamodb;
pub mod memory;

use base64::Engine;

use crate::domain::Order;

/// The sort value of an order in "orders by customer": `<created_at>#<id>`, which sorts by
/// time because ids are UUID v7.
pub(crate) fn customer_sort_key(order: &Order) -> String {
    format!(
        "{}#{}",
        order
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        order.id
    )
}

/// Cursors are the last sort value of a page, base64url-encoded: opaque to clients, the same
/// for every adapter.
pub(crate) fn encode_cursor(sort_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sort_key)
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    // `<rfc3339>#<uuid>`: anything else was not issued by us.
    let (time, id) = text.split_once('#')?;
    (chrono::DateTime::parse_from_rfc3339(time).is_ok() && uuid::Uuid::parse_str(id).is_ok())
        .then_some(text)
}
