//! Per-subject rate limits counted in a service's DynamoDB table, so they hold across every
//! Lambda sandbox: a fixed-window counter item per subject and window, moved by one conditional
//! `UpdateItem` (`ADD count` while it is below the limit) and expired by the table's TTL.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use aws_sdk_dynamodb::{Client, error::SdkError, operation::update_item::UpdateItemError};

use crate::dynamo::{EXPIRES_AT, PK, SK, n, s};
use crate::telemetry::Step as _;

/// Key prefix of counter items: `RATE#<subject>` / `WINDOW#<window start>`.
pub const PREFIX: &str = "RATE#";

/// At most `limit` hits per `window` and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

/// What a hit was answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The subject used its limit in this window; the next one starts in `retry_after` seconds.
    Limited {
        retry_after: u64,
    },
}

impl RateLimit {
    /// The start (epoch seconds) of the window holding `now`, and the seconds until it ends
    /// (at least 1).
    pub fn window_at(&self, now: i64) -> (i64, u64) {
        let length = i64::try_from(self.window.as_secs().max(1)).unwrap_or(i64::MAX);
        let start = now - now.rem_euclid(length);
        let left = u64::try_from(start + length - now).unwrap_or(1).max(1);
        (start, left)
    }
}

/// Counts one hit of `subject` at `now` (epoch seconds) in `table`.
pub async fn hit(
    client: &Client,
    table: &str,
    subject: &str,
    limit: &RateLimit,
    now: i64,
) -> Result<Decision, SdkError<UpdateItemError>> {
    let (start, retry_after) = limit.window_at(now);
    let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX);
    let result = client
        .update_item()
        .table_name(table)
        .key(PK, s(format!("{PREFIX}{subject}")))
        .key(SK, s(format!("WINDOW#{start}")))
        .update_expression("ADD #count :one SET #expires = :expires")
        .condition_expression("attribute_not_exists(#count) OR #count < :limit")
        .expression_attribute_names("#count", "count")
        .expression_attribute_names("#expires", EXPIRES_AT)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":limit", n(i64::from(limit.limit)))
        .expression_attribute_values(
            ":expires",
            n(start.saturating_add(window.saturating_mul(2))),
        )
        .send()
        .step("dynamodb.UpdateItem")
        .await;
    match result {
        Ok(_) => Ok(Decision::Allowed),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
        {
            Ok(Decision::Limited { retry_after })
        }
        Err(e) => Err(e),
    }
}

/// The same counters in memory, for the in-memory adapters.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<HashMap<(String, i64), u32>>,
}

impl MemoryRateLimiter {
    /// Counts one hit of `subject` at `now`, like [`hit`].
    pub fn hit(&self, subject: &str, limit: &RateLimit, now: i64) -> Decision {
        let (start, retry_after) = limit.window_at(now);
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.retain(|(_, window), _| *window >= start);
        let count = counts.entry((subject.to_owned(), start)).or_insert(0);
        if *count >= limit.limit {
            return Decision::Limited { retry_after };
        }
        *count += 1;
        Decision::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PER_MINUTE: RateLimit = RateLimit {
        limit: 2,
        window: Duration::from_secs(60),
    };

    #[test]
    fn windows_are_aligned_and_say_how_long_is_left() {
        assert_eq!(PER_MINUTE.window_at(120), (120, 60));
        assert_eq!(PER_MINUTE.window_at(179), (120, 1));
        assert_eq!(PER_MINUTE.window_at(181), (180, 59));
    }

    #[test]
    fn a_subject_is_limited_within_a_window_and_free_in_the_next() {
        let limiter = MemoryRateLimiter::default();
        assert_eq!(limiter.hit("a", &PER_MINUTE, 120), Decision::Allowed);
        assert_eq!(limiter.hit("a", &PER_MINUTE, 130), Decision::Allowed);
        assert_eq!(
            limiter.hit("a", &PER_MINUTE, 170),
            Decision::Limited { retry_after: 10 }
        );
        assert_eq!(limiter.hit("b", &PER_MINUTE, 170), Decision::Allowed);
        assert_eq!(limiter.hit("a", &PER_MINUTE, 180), Decision::Allowed);
    }
}
