//! Cursor pagination of "items by owner, newest first" (the `gsi1` index of every table):
//! the sort value is `<rfc3339 time>#<uuid>`, and a cursor is the last sort value of a page,
//! base64url-encoded — opaque to clients, the same for every service and adapter. A cursor is
//! accepted only if it is exactly one we could have issued (decoding and encoding it again gives
//! the same text), so nothing else reaches the database as a start key.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_http::{Request, RequestExt};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::ApiError;

/// Page size when the client gives none, and the most it may ask for.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// The longest cursor we issue is 87 characters (`<27-character time>#<36-character uuid>`
/// in base64url); anything much longer is refused before it is decoded.
pub const MAX_CURSOR_CHARS: usize = 128;

/// The `gsi1sk` of an item created at `time` with id `id`.
pub fn sort_key(time: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", time.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// The cursor that continues after the item with `sort_key`.
pub fn encode_cursor(sort_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sort_key)
}

/// The sort key inside a cursor we issued; `None` for anything else: a cursor too long, not
/// base64url, or whose sort key is not the canonical [`sort_key`] of a time and a uuid (another
/// precision, offset or case, extra text, a 1,100-digit fraction).
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (time, id) = text.split_once('#')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let id = uuid::Uuid::parse_str(id).ok()?;
    let canonical = sort_key(time, &id.to_string());
    (canonical == text && encode_cursor(&canonical) == cursor).then_some(canonical)
}

/// `limit` and `cursor` from the query string: 400 for a limit outside 1..=[`MAX_LIMIT`] or a
/// cursor we did not issue. Returns the decoded sort key to continue after.
pub fn params(request: &Request) -> Result<(u32, Option<String>), ApiError> {
    let query = request.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
            })?,
    };
    let after = match query.and_then(|q| q.first("cursor")) {
        None => None,
        Some(cursor) => Some(
            decode_cursor(cursor)
                .ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    Ok((limit, after))
}

/// One page of `items` (any order) sorted newest first after `after`, for in-memory adapters:
/// the same semantics as the DynamoDB query.
pub fn in_memory<T: Clone>(
    mut items: Vec<(String, T)>,
    limit: u32,
    after: Option<&str>,
) -> (Vec<T>, Option<String>) {
    items.retain(|(key, _)| after.is_none_or(|after| key.as_str() < after));
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let limit = limit as usize;
    let next = (items.len() > limit).then(|| encode_cursor(&items[limit - 1].0));
    (
        items
            .into_iter()
            .take(limit)
            .map(|(_, item)| item)
            .collect(),
        next,
    )
}

/// The body of a list response: one page of items and the cursor of the next page (`null` on
/// the last one).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let key = sort_key(Utc::now(), &uuid::Uuid::now_v7().to_string());
        assert_eq!(decode_cursor(&encode_cursor(&key)), Some(key));
        assert_eq!(decode_cursor("bm90IGEgY3Vyc29y"), None);
        assert_eq!(decode_cursor("%%%"), None);
    }

    #[test]
    fn only_canonical_cursors_are_accepted() {
        let id = uuid::Uuid::now_v7().to_string();
        let ok = encode_cursor(&format!("2026-01-01T00:00:00.000001Z#{id}"));
        assert!(decode_cursor(&ok).is_some());
        for text in [
            format!("2026-01-01T00:00:00.{}Z#{id}", "1".repeat(1_100)),
            format!("2026-01-01T00:00:00Z#{id}"),
            format!("2026-01-01T00:00:00.000001+00:00#{id}"),
            format!("2026-01-01T00:00:00.000001Z#{}", id.to_uppercase()),
            format!("2026-01-01T00:00:00.000001Z#{id}#x"),
        ] {
            assert_eq!(decode_cursor(&encode_cursor(&text)), None, "{text}");
        }
        // Base64 with padding or trailing bits that decode to the same text is not ours either.
        assert_eq!(decode_cursor(&format!("{ok}=")), None);
    }

    #[test]
    fn in_memory_pages_are_newest_first_and_continue_after_the_cursor() {
        let items: Vec<(String, u32)> = (0..5)
            .map(|i| (format!("2026-01-0{}T00:00:00Z#x", i + 1), i))
            .collect();
        let (first, next) = in_memory(items.clone(), 2, None);
        assert_eq!(first, [4, 3]);
        let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(next.unwrap())
            .map(|b| String::from_utf8(b).unwrap())
            .unwrap();
        let (second, _) = in_memory(items.clone(), 2, Some(&after));
        assert_eq!(second, [2, 1]);
        let (last, none) = in_memory(items, 10, None);
        assert_eq!(last.len(), 5);
        assert!(none.is_none());
    }
}
