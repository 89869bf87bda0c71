//! Scheduled invocations: the `Schedule` (EventBridge rule) and `ScheduleV2` (EventBridge
//! Scheduler) events of the template's functions. `rate(…)`, `cron(…)` (without `L`, `W` and
//! `#`, in UTC) and `at(…)` expressions are understood; a period override (`--schedule-period`)
//! replaces every schedule's timing with one short period for tests and local runs. Each firing
//! invokes the function asynchronously with the EventBridge "Scheduled Event", or with the
//! event's `Input` when it has one.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, TimeDelta, Timelike as _, Utc};
use serde_json::{Value, json};

use crate::functions::ScheduleSpec;
use crate::report::{Delivery, Reporter, correlation_id};
use crate::runtime::FunctionPool;

/// Why a schedule expression was not understood.
#[derive(Debug, thiserror::Error)]
pub enum ExpressionError {
    #[error("{0:?} is not rate(…), cron(…) or at(…)")]
    Unknown(String),
    #[error("rate {0:?}: want rate(<n> minute|minutes|hour|hours|day|days) with n >= 1")]
    Rate(String),
    #[error("cron {0:?}: want six fields (minutes hours day-of-month month day-of-week year)")]
    CronFields(String),
    #[error(
        "cron field {field:?}: {why} (the local stack understands * ? , - / and names, not L W #)"
    )]
    CronField { field: String, why: String },
    #[error("at {0:?}: want at(yyyy-mm-ddThh:mm:ss)")]
    At(String),
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(5 minutes)`: every period, counted from when the schedule was created.
    Rate(Duration),
    /// `cron(…)`, evaluated in UTC.
    Cron(Box<Cron>),
    /// `at(2026-12-01T10:00:00)`: once (EventBridge Scheduler one-time schedules).
    At(NaiveDateTime),
}

impl FromStr for Expression {
    type Err = ExpressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let inner = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(r) = inner("rate(") {
            return parse_rate(r)
                .map(Expression::Rate)
                .ok_or_else(|| ExpressionError::Rate(s.to_owned()));
        }
        if let Some(c) = inner("cron(") {
            return Cron::parse(c).map(|c| Expression::Cron(Box::new(c)));
        }
        if let Some(a) = inner("at(") {
            return NaiveDateTime::parse_from_str(a, "%Y-%m-%dT%H:%M:%S")
                .map(Expression::At)
                .map_err(|_| ExpressionError::At(s.to_owned()));
        }
        Err(ExpressionError::Unknown(s.to_owned()))
    }
}

fn parse_rate(r: &str) -> Option<Duration> {
    let (n, unit) = r.split_once(char::is_whitespace)?;
    let n: u64 = n.trim().parse().ok().filter(|n| *n >= 1)?;
    let unit_s = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(unit_s)?))
}

impl Expression {
    /// The first firing strictly after `after`, for a schedule created at `created`.
    pub fn next_after(
        &self,
        created: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Expression::Rate(period) => {
                let period = TimeDelta::from_std(*period).ok()?;
                let elapsed = after.signed_duration_since(created);
                let periods = if elapsed < TimeDelta::zero() {
                    0
                } else {
                    elapsed.num_milliseconds() / period.num_milliseconds().max(1)
                };
                let next = created + period * i32::try_from(periods + 1).ok()?;
                Some(next)
            }
            Expression::Cron(c) => c.next_after(after),
            Expression::At(t) => {
                let t = t.and_utc();
                (t > after).then_some(t)
            }
        }
    }
}

/// A six-field EventBridge cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    /// `None` for `?`.
    days_of_month: Option<BTreeSet<u32>>,
    months: BTreeSet<u32>,
    /// 1 = Sunday … 7 = Saturday; `None` for `?`.
    days_of_week: Option<BTreeSet<u32>>,
    years: BTreeSet<u32>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    fn parse(text: &str) -> Result<Self, ExpressionError> {
        let f: Vec<&str> = text.split_whitespace().collect();
        let [min, hour, dom, month, dow, year] = f.as_slice() else {
            return Err(ExpressionError::CronFields(text.to_owned()));
        };
        let days_of_month = field(dom, 1, 31, &[], true)?;
        let days_of_week = field(dow, 1, 7, &DAYS, true)?;
        if days_of_month.is_none() && days_of_week.is_none() {
            return Err(ExpressionError::CronField {
                field: (*dow).to_owned(),
                why: "day-of-month and day-of-week cannot both be ?".into(),
            });
        }
        let required = |v: Option<BTreeSet<u32>>, f: &str| {
            v.ok_or_else(|| ExpressionError::CronField {
                field: f.to_owned(),
                why: "? is only allowed for day-of-month or day-of-week".into(),
            })
        };
        Ok(Self {
            minutes: required(field(min, 0, 59, &[], false)?, min)?,
            hours: required(field(hour, 0, 23, &[], false)?, hour)?,
            days_of_month,
            months: required(field(month, 1, 12, &MONTHS, false)?, month)?,
            days_of_week,
            years: required(field(year, 1970, 2199, &[], false)?, year)?,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days_of_month.as_ref().map(|s| s.contains(&d.day()));
        let dow = self
            .days_of_week
            .as_ref()
            .map(|s| s.contains(&d.weekday().number_from_sunday()));
        self.years.contains(&u32::try_from(d.year()).unwrap_or(0))
            && self.months.contains(&d.month())
            && match (dom, dow) {
                (Some(a), Some(b)) => a && b,
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => false,
            }
    }

    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .map(|t| t + TimeDelta::minutes(1))?;
        let mut day = start.date_naive();
        let last_year = *self.years.last()?;
        while u32::try_from(day.year()).unwrap_or(u32::MAX) <= last_year {
            if self.day_matches(day) {
                let from = if day == start.date_naive() {
                    start.hour() * 60 + start.minute()
                } else {
                    0
                };
                let hit = self.hours.iter().find_map(|h| {
                    self.minutes
                        .iter()
                        .map(|m| h * 60 + m)
                        .find(|hm| *hm >= from)
                });
                if let Some(hm) = hit {
                    return day.and_hms_opt(hm / 60, hm % 60, 0).map(|t| t.and_utc());
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

/// One cron field: `*`, `?` (when `question` is allowed: gives `None`), and a comma-separated
/// list of `a`, `a-b`, `*/n`, `a/n` or `a-b/n`, with `names` for the values from `lo`.
fn field(
    text: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    question: bool,
) -> Result<Option<BTreeSet<u32>>, ExpressionError> {
    let bad = |why: &str| ExpressionError::CronField {
        field: text.to_owned(),
        why: why.to_owned(),
    };
    if text == "?" {
        return if question {
            Ok(None)
        } else {
            Err(bad("? is only allowed for day-of-month or day-of-week"))
        };
    }
    let value = |s: &str| -> Result<u32, ExpressionError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(lo + i as u32);
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| bad(&format!("{s:?} is not a value in {lo}-{hi}")))
    };
    let mut set = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| bad("a step must be a number >= 1"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(bad("a range must go upwards"));
        }
        set.extend((from..=to).step_by(step as usize));
    }
    Ok(Some(set))
}

/// Parses `2s`, `1.5s`, `500ms`, `1m` or `2h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: want a duration such as 2s, 1.5s, 500ms or 1m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?}: want a positive duration"))
}

/// The event a schedule sends: its `Input`, else the EventBridge "Scheduled Event".
pub fn scheduled_event(
    spec: &ScheduleSpec,
    region: &str,
    account: &str,
    time: DateTime<Utc>,
) -> Bytes {
    if let Some(input) = &spec.input {
        return Bytes::from(input.clone());
    }
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [spec.arn],
        "detail": {},
    });
    Bytes::from(event.to_string())
}

/// Runs one schedule of a function.
#[derive(Debug, Clone)]
pub struct ScheduleRunner {
    pub schedule: ScheduleSpec,
    pub function: Arc<FunctionPool>,
    pub reporter: Arc<Reporter>,
    pub region: String,
    pub account: String,
    /// Replaces the expression's timing: fire every `period` (tests, local runs).
    pub period: Option<Duration>,
}

impl ScheduleRunner {
    /// Fires until aborted (or, for `at(…)`, once). Each firing is an asynchronous invocation:
    /// a slow function never delays the next firing.
    pub async fn run(self) {
        let expression = match self.schedule.expression.parse::<Expression>() {
            Ok(e) => Some(e),
            Err(e) if self.period.is_some() => {
                eprintln!(
                    "local-stack: {} schedule {}: {e}; firing every {:?} anyway (--schedule-period)",
                    self.function.spec().name,
                    self.schedule.event_id,
                    self.period.unwrap_or_default()
                );
                None
            }
            Err(e) => {
                eprintln!(
                    "local-stack: warning: {} schedule {} is not run: {e} (use --schedule-period)",
                    self.function.spec().name,
                    self.schedule.event_id
                );
                return;
            }
        };
        let this = Arc::new(self);
        let created = Utc::now();
        let started = Instant::now();
        let mut fired: u32 = 0;
        loop {
            let wait = match (this.period, &expression) {
                (Some(p), _) => {
                    let next = p.saturating_mul(fired + 1);
                    next.saturating_sub(started.elapsed())
                }
                (None, Some(e)) => {
                    let now = Utc::now();
                    let Some(next) = e.next_after(created, now) else {
                        return;
                    };
                    next.signed_duration_since(now)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                }
                (None, None) => return,
            };
            tokio::time::sleep(wait).await;
            fired = fired.saturating_add(1);
            tokio::spawn(this.clone().fire());
        }
    }

    async fn fire(self: Arc<Self>) {
        let started = Instant::now();
        let event = scheduled_event(&self.schedule, &self.region, &self.account, Utc::now());
        let json: Value = serde_json::from_slice(&event).unwrap_or(Value::Null);
        let invoked = self.function.invoke(event).await;
        self.reporter.record(Delivery {
            function: self.function.spec().name.clone(),
            source: "schedule".into(),
            ids: vec![self.schedule.event_id.clone()],
            failed_ids: Vec::new(),
            success: invoked.outcome.is_success(),
            outcome: invoked.outcome.describe(),
            correlation_id: correlation_id(&json),
            duration: started.elapsed(),
            ..Delivery::saga(&json, &invoked)
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn rates_are_minutes_hours_or_days() {
        assert_eq!(
            "rate(1 minute)".parse::<Expression>().unwrap(),
            Expression::Rate(Duration::from_secs(60))
        );
        assert_eq!(
            "rate(15 minutes)".parse::<Expression>().unwrap(),
            Expression::Rate(Duration::from_secs(900))
        );
        assert_eq!(
            "rate(2 days)".parse::<Expression>().unwrap(),
            Expression::Rate(Duration::from_secs(172_800))
        );
        assert!("rate(0 minutes)".parse::<Expression>().is_err());
        assert!("rate(5 seconds)".parse::<Expression>().is_err());
        assert!("every 5 minutes".parse::<Expression>().is_err());
    }

    #[test]
    fn a_rate_fires_one_period_after_creation_and_then_every_period() {
        let e: Expression = "rate(5 minutes)".parse().unwrap();
        let created = at("2026-11-30T10:00:30Z");
        assert_eq!(
            e.next_after(created, created),
            Some(at("2026-11-30T10:05:30Z"))
        );
        assert_eq!(
            e.next_after(created, at("2026-11-30T10:05:30Z")),
            Some(at("2026-11-30T10:10:30Z"))
        );
    }

    #[test]
    fn a_cron_every_five_minutes_fires_on_the_next_multiple_of_five() {
        let e: Expression = "cron(0/5 * * * ? *)".parse().unwrap();
        let t = at("2026-11-30T10:07:12Z");
        assert_eq!(e.next_after(t, t), Some(at("2026-11-30T10:10:00Z")));
    }

    #[test]
    fn a_weekday_cron_skips_the_weekend() {
        // 2026-11-28 is a Saturday.
        let e: Expression = "cron(30 9 ? * MON-FRI *)".parse().unwrap();
        let t = at("2026-11-27T10:00:00Z");
        assert_eq!(e.next_after(t, t), Some(at("2026-11-30T09:30:00Z")));
    }

    #[test]
    fn a_daily_cron_fires_at_its_time_the_same_day_or_the_next() {
        let e: Expression = "cron(0 3 * * ? *)".parse().unwrap();
        let t = at("2026-11-30T02:59:59Z");
        assert_eq!(e.next_after(t, t), Some(at("2026-11-30T03:00:00Z")));
        let t = at("2026-11-30T03:00:00Z");
        assert_eq!(e.next_after(t, t), Some(at("2026-12-01T03:00:00Z")));
    }

    #[test]
    fn cron_features_the_local_stack_does_not_know_are_refused_with_a_reason() {
        let err = "cron(0 10 L * ? *)".parse::<Expression>().unwrap_err();
        assert!(err.to_string().contains("not L W #"), "{err}");
        assert!("cron(0 10 * * *)".parse::<Expression>().is_err());
        assert!("cron(0 10 ? * ? *)".parse::<Expression>().is_err());
    }

    #[test]
    fn a_one_time_schedule_fires_once() {
        let e: Expression = "at(2026-12-01T10:00:00)".parse().unwrap();
        let t = at("2026-11-30T10:00:00Z");
        assert_eq!(e.next_after(t, t), Some(at("2026-12-01T10:00:00Z")));
        let later = at("2026-12-01T10:00:00Z");
        assert_eq!(e.next_after(t, later), None);
    }

    #[test]
    fn durations_take_ms_s_m_and_h() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("2d").is_err());
    }

    #[test]
    fn the_scheduled_event_names_the_rule_and_has_an_empty_detail() {
        let spec = ScheduleSpec {
            event_id: "Every".into(),
            expression: "rate(1 minute)".into(),
            input: None,
            enabled: true,
            arn: "arn:aws:events:us-east-1:123456789012:rule/r".into(),
        };
        let e: Value = serde_json::from_slice(&scheduled_event(
            &spec,
            "us-east-1",
            "123456789012",
            at("2026-11-30T10:00:00Z"),
        ))
        .unwrap();
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["version"], "0");
        assert_eq!(e["account"], "123456789012");
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["time"], "2026-11-30T10:00:00Z");
        assert_eq!(e["resources"], json!([spec.arn]));
        assert_eq!(e["detail"], json!({}));
        assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    #[test]
    fn a_schedule_with_input_sends_the_input_as_is() {
        let spec = ScheduleSpec {
            event_id: "Every".into(),
            expression: "rate(1 minute)".into(),
            input: Some(r#"{"older_than_s": 900}"#.into()),
            enabled: true,
            arn: "arn".into(),
        };
        let e = scheduled_event(&spec, "r", "a", Utc::now());
        assert_eq!(&e[..], br#"{"older_than_s": 900}"#);
    }
}
