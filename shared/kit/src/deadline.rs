//! The invocation deadline of an event function, less a safety margin: batch handlers stop
//! starting work (and abandon work in flight) when it passes, and report what is left as
//! failed, instead of letting Lambda time the whole invocation out — which would retry every
//! message of the batch and count a receive against each.
//!
//! The margin covers what must still happen after the last message: logging, the EMF metrics
//! line and the response to the Runtime API (a few milliseconds), with room for a slow
//! scheduler. It is [`MAX_MARGIN`] (2 s) or [`MARGIN_DIVISOR`]⁻¹ (a tenth) of the time left
//! when the invocation starts, whichever is smaller, so a short local timeout (1–2 s) still
//! leaves most of its time to the handler. `DEADLINE_MARGIN_MS` overrides it.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{self, ConfigError};

/// The largest default margin.
pub const MAX_MARGIN: Duration = Duration::from_secs(2);
/// The default margin is at most the time left at start divided by this.
pub const MARGIN_DIVISOR: u32 = 10;
/// The optional variable that overrides the margin, in milliseconds.
pub const MARGIN_VAR: &str = "DEADLINE_MARGIN_MS";

/// How long before the invocation deadline work stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Margin {
    /// [`MAX_MARGIN`] or a tenth of the time left, whichever is smaller.
    Default,
    /// A fixed margin.
    Fixed(Duration),
}

impl Margin {
    /// The margin from [`MARGIN_VAR`], or [`Margin::Default`] when unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        match config::optional(MARGIN_VAR)? {
            None => Ok(Margin::Default),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .map(|ms| Margin::Fixed(Duration::from_millis(ms)))
                .map_err(|e| ConfigError::Invalid {
                    name: MARGIN_VAR,
                    reason: e.to_string(),
                }),
        }
    }

    /// The margin for an invocation with `left` before its deadline.
    pub fn of(self, left: Duration) -> Duration {
        match self {
            Margin::Default => MAX_MARGIN.min(left / MARGIN_DIVISOR),
            Margin::Fixed(margin) => margin,
        }
    }
}

/// The moment work must stop, on tokio's clock (so tests can pause time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: work runs to completion.
    pub fn never() -> Self {
        Deadline(None)
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Some(Instant::now() + budget))
    }

    /// The deadline of the invocation of `context`, less `margin`.
    pub fn of_invocation(context: &lambda_runtime::Context, margin: Margin) -> Self {
        let left = context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Deadline::after(left.saturating_sub(margin.of(left)))
    }

    /// Whether the deadline has passed.
    pub fn is_past(&self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    /// Time left, `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Runs `work` until it completes (`Some`) or the deadline passes (`None`, and `work` is
    /// dropped: abandoned where it stood). Past the deadline, `work` is not started at all.
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.0 {
            None => Some(work.await),
            Some(at) if Instant::now() >= at => None,
            Some(at) => tokio::time::timeout_at(at, work).await.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_margin_is_two_seconds_or_a_tenth_of_the_time_left() {
        assert_eq!(Margin::Default.of(Duration::from_secs(30)), MAX_MARGIN);
        assert_eq!(
            Margin::Default.of(Duration::from_secs(15)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            Margin::Default.of(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
        assert_eq!(Margin::Default.of(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            Margin::Fixed(Duration::from_millis(5)).of(Duration::from_secs(60)),
            Duration::from_millis(5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_deadline_keeps_its_margin() {
        let mut context = lambda_runtime::Context::default();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        context.deadline = u64::try_from((now + Duration::from_secs(10)).as_millis()).unwrap();
        let deadline = Deadline::of_invocation(&context, Margin::Default);
        let left = deadline.remaining().unwrap();
        // 10 s less a 1 s margin, less the few ms between building the context and here.
        assert!(left <= Duration::from_secs(9), "{left:?}");
        assert!(left > Duration::from_millis(8900), "{left:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_abandoned() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let out = deadline
            .run(tokio::time::sleep(Duration::from_secs(5)))
            .await;
        assert_eq!(out, None);
        assert!(deadline.is_past());
        assert_eq!(
            deadline.run(async { 7 }).await,
            None,
            "started past the deadline"
        );
        assert_eq!(Deadline::never().run(async { 7 }).await, Some(7));
        assert!(!Deadline::never().is_past());
    }

    #[tokio::test]
    async fn an_invocation_already_past_its_deadline_has_no_time_left() {
        let context = lambda_runtime::Context::default(); // deadline 0: 1970
        let deadline = Deadline::of_invocation(&context, Margin::Default);
        assert!(deadline.is_past());
        assert_eq!(deadline.remaining(), Some(Duration::ZERO));
    }
}
