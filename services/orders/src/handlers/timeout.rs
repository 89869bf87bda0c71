//! The saga timeout, run on a schedule: an order still PENDING after the timeout (its payment
//! message in a DLQ, a relay that gave up, a provider that never answered) is cancelled with the
//! reason `payment_timeout` and publishes OrderCancelled like any other cancellation, so
//! payments voids whatever it may hold and notify tells the customer.

use chrono::{DateTime, Duration, Utc};
use kit::events::Envelope;
use serde::Serialize;

use crate::{
    EVENT_SOURCE,
    domain::{OrderId, Status},
    ports::{OrderRepository, RepositoryError},
};

/// Orders read from the pending index per query.
pub const PAGE: u32 = 100;
/// Orders cancelled per run at most; the next run carries on.
pub const MAX_PER_RUN: usize = 1_000;
/// Attempts of a cancellation that races with another change of the same order.
const ATTEMPTS: usize = 3;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// Orders found PENDING past the timeout.
    pub due: usize,
    /// Orders this run cancelled.
    pub cancelled: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TimeoutError {
    #[error("cannot build the OrderCancelled event")]
    Contract(#[from] kit::events::ContractError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Cancels every order PENDING since before `now - timeout` (at most [`MAX_PER_RUN`]).
pub async fn expire<R: OrderRepository>(
    orders: &R,
    timeout: Duration,
    now: DateTime<Utc>,
) -> Result<Expired, TimeoutError> {
    let cutoff = now - timeout;
    let mut expired = Expired::default();
    while expired.due < MAX_PER_RUN {
        let due = orders.pending_before(cutoff, PAGE).await?;
        let before = expired.cancelled;
        expired.due += due.len();
        for id in &due {
            if time_out(orders, id, cutoff, now).await? {
                expired.cancelled += 1;
            }
        }
        // A short page is the last; a page with no progress (the index lags) ends the run too.
        if due.len() < PAGE as usize || expired.cancelled == before {
            break;
        }
    }
    if expired.due > 0 {
        tracing::warn!(
            due = expired.due,
            cancelled = expired.cancelled,
            timeout_minutes = timeout.num_minutes(),
            "orders past the saga timeout cancelled"
        );
        kit::metrics::emit(
            crate::SERVICE,
            &[],
            &[kit::metrics::Metric::count(
                "OrdersTimedOut",
                u32::try_from(expired.cancelled).unwrap_or(u32::MAX),
            )],
        );
    }
    Ok(expired)
}

/// Cancels order `id` if it is still PENDING and was placed before `cutoff`; whether it did.
async fn time_out<R: OrderRepository>(
    orders: &R,
    id: &OrderId,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, TimeoutError> {
    for _ in 0..ATTEMPTS {
        let Some(mut order) = orders.get(id).await? else {
            return Ok(false);
        };
        // The index may lag: the order itself decides.
        if order.status != Status::Pending || order.created_at >= cutoff {
            return Ok(false);
        }
        let expected = order.version;
        let Ok(event) = order.time_out(now) else {
            return Ok(false);
        };
        let correlation_id = order
            .correlation_id
            .clone()
            .unwrap_or_else(|| order.id.to_string());
        let envelope = Envelope::new(EVENT_SOURCE, &event, &correlation_id, None, now)?;
        match orders.update(&order, expected, &[envelope], None).await {
            Ok(()) => {
                tracing::info!(order_id = %id, "order cancelled: payment timeout");
                return Ok(true);
            }
            Err(RepositoryError::VersionConflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(false)
}
