//! `redrive republish`: publishes again the outbox events a relay gave up on.
//!
//! When a relay's stream mapping runs out of retries it sends an *on-failure record* to the
//! relay DLQ. That record holds no event, only the batch's metadata (AWS Lambda developer
//! guide, "Retain discarded records for a DynamoDB event source in Lambda"):
//!
//! ```json
//! { "requestContext": { "requestId": "…", "functionArn": "…", "condition": "RetryAttemptsExhausted",
//!                       "approximateInvokeCount": 1 },
//!   "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
//!   "version": "1.0", "timestamp": "2019-11-14T00:13:49.717Z",
//!   "DDBStreamBatchInfo": { "shardId": "shardId-…", "startSequenceNumber": "800000000003126276362",
//!       "endSequenceNumber": "800000000003126276362",
//!       "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
//!       "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
//!       "batchSize": 1, "streamArn": "arn:aws:dynamodb:…:table/<table>/stream/<label>" } }
//! ```
//!
//! The stream keeps records for 24 hours, the DLQ keeps the message for 14 days, so the events
//! are read from the table instead: every outbox item (`OUTBOX#…`, which keeps its envelope
//! until its TTL, longer than the DLQ keeps the message) whose envelope time lies in the
//! batch's arrival window, widened by a slack, is published again with its original envelope —
//! same event id, so consumers (idempotent by event id) ignore what they already handled. A
//! DLQ message is deleted only after every event of its window was accepted by EventBridge.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message};
use chrono::{DateTime, TimeDelta, Utc};
use kit::{
    events::Envelope,
    outbox::Record,
    relay::{MAX_BATCH, Publisher},
};
use serde::Deserialize;

/// A span of event times, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.since <= time && time <= self.until
    }

    /// The smallest window holding both.
    pub fn union(self, other: Window) -> Window {
        Window {
            since: self.since.min(other.since),
            until: self.until.max(other.until),
        }
    }
}

/// What `republish` needs of an on-failure record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OnFailureRecord {
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: StreamBatchInfo,
}

/// `DDBStreamBatchInfo` of an on-failure record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub approximate_arrival_of_first_record: Arrival,
    pub approximate_arrival_of_last_record: Arrival,
    pub batch_size: u64,
    pub stream_arn: String,
}

/// An arrival time: an RFC 3339 string (Lambda) or epoch seconds (the stream record's own
/// `ApproximateCreationDateTime`, which the local stack passes through).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Arrival {
    Text(String),
    EpochSeconds(f64),
}

impl Arrival {
    pub fn time(&self) -> anyhow::Result<DateTime<Utc>> {
        match self {
            Arrival::Text(text) => Ok(DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("arrival time {text:?}"))?
                .with_timezone(&Utc)),
            Arrival::EpochSeconds(seconds) => {
                // Whole milliseconds are plenty for a window widened by seconds.
                let millis = (seconds * 1000.0).round() as i64;
                DateTime::from_timestamp_millis(millis)
                    .with_context(|| format!("arrival time {seconds}"))
            }
        }
    }
}

impl OnFailureRecord {
    /// Parses an on-failure record (the body of a relay DLQ message).
    pub fn parse(body: &str) -> anyhow::Result<Self> {
        serde_json::from_str(body).context("not a DynamoDB stream on-failure record")
    }

    /// The table whose stream the batch came from.
    pub fn table(&self) -> anyhow::Result<&str> {
        table_of_stream(&self.batch.stream_arn)
            .with_context(|| format!("no table in stream ARN {}", self.batch.stream_arn))
    }

    /// The batch's arrival window widened by `slack` on each side: an envelope's time is set
    /// before its transaction commits, and arrival times are rounded to the second.
    pub fn window(&self, slack: TimeDelta) -> anyhow::Result<Window> {
        let first = self.batch.approximate_arrival_of_first_record.time()?;
        let last = self.batch.approximate_arrival_of_last_record.time()?;
        Ok(Window {
            since: first.min(last) - slack,
            until: first.max(last) + slack,
        })
    }
}

/// The table name of a stream ARN `arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`.
pub fn table_of_stream(stream_arn: &str) -> Option<&str> {
    let (_, rest) = stream_arn.split_once(":table/")?;
    let (table, _) = rest.split_once("/stream/")?;
    (!table.is_empty()).then_some(table)
}

/// Every outbox envelope of `table` whose time lies in `window`, oldest first. A `Scan` of
/// the whole table filtered on the `OUTBOX#` key prefix: an operator's tool, run rarely.
pub async fn outbox_events(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    window: Window,
) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(kit::outbox::PREFIX.into()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .with_context(|| format!("Scan {table}"))?;
        for item in page.items() {
            match kit::outbox::record_of(item) {
                None => {}
                Some(Ok(record)) if window.contains(record.envelope.time) => records.push(record),
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    let pk = item.get("pk").and_then(|v| v.as_s().ok());
                    bail!("outbox item {pk:?} of {table} holds no valid envelope: {error}");
                }
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    records.sort_by_key(|r| (r.envelope.time, r.envelope.id));
    Ok(records)
}

/// Publishes `records` in batches of ten, each with its original trace header; returns the
/// ids EventBridge did not accept, with the reason.
pub async fn publish<P: Publisher>(publisher: &P, records: &[Record]) -> Vec<(uuid::Uuid, String)> {
    let mut failed = Vec::new();
    for chunk in records.chunks(MAX_BATCH) {
        match publisher.publish(chunk).await {
            Ok(results) => {
                for (record, result) in chunk.iter().zip(results) {
                    if let Some(code) = result {
                        failed.push((record.envelope.id, code));
                    }
                }
            }
            Err(error) => {
                let reason = format!("{:#}", anyhow::Error::new(error));
                failed.extend(chunk.iter().map(|r| (r.envelope.id, reason.clone())));
            }
        }
    }
    failed
}

/// How `republish` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RepublishOptions {
    /// How far each window is widened on both sides.
    pub slack: TimeDelta,
    /// Read the events from this table instead of the one the stream ARN names.
    pub table: Option<String>,
    /// Report what would be published; change nothing.
    pub dry_run: bool,
    /// Handle at most this many DLQ messages.
    pub max: Option<usize>,
    /// How long received messages stay invisible while the run handles them.
    pub visibility_timeout_s: i32,
}

impl Default for RepublishOptions {
    fn default() -> Self {
        Self {
            slack: TimeDelta::seconds(60),
            table: None,
            dry_run: false,
            max: None,
            visibility_timeout_s: 300,
        }
    }
}

/// One DLQ message and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageOutcome {
    pub message_id: String,
    pub table: Option<String>,
    pub window: Option<Window>,
    /// The events of its window (published, or that would be).
    pub events: Vec<uuid::Uuid>,
    /// Why it stays in the DLQ; `None` when it was deleted (or, in a dry run, would be).
    pub kept: Option<String>,
}

/// What a `republish` run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepublishReport {
    pub messages: Vec<MessageOutcome>,
    /// Events accepted by EventBridge in this run (each at most once per run).
    pub published: usize,
    /// Events EventBridge did not accept: id and reason.
    pub failed: Vec<(uuid::Uuid, String)>,
}

/// `redrive republish --dlq`: for every on-failure record in `dlq_url`, publishes again the
/// outbox events of its window and deletes the message once all of them were accepted. One
/// scan per table covers every message of the run; an event in several windows is published
/// once. Messages that stay (unreadable, or an event not accepted) are made visible again
/// when the run ends.
pub async fn republish_dlq<P: Publisher>(
    sqs: &aws_sdk_sqs::Client,
    dynamo: &aws_sdk_dynamodb::Client,
    publisher: &P,
    dlq_url: &str,
    options: &RepublishOptions,
) -> anyhow::Result<RepublishReport> {
    let messages = receive_all(sqs, dlq_url, options).await?;
    let mut report = RepublishReport::default();

    // Read every message; the windows per table.
    let mut parsed: Vec<(Message, anyhow::Result<(String, Window)>)> = Vec::new();
    for message in messages {
        let read = OnFailureRecord::parse(message.body().unwrap_or_default()).and_then(|record| {
            let table = match &options.table {
                Some(table) => table.clone(),
                None => record.table()?.to_owned(),
            };
            Ok((table, record.window(options.slack)?))
        });
        parsed.push((message, read));
    }
    let mut per_table: BTreeMap<String, Window> = BTreeMap::new();
    for (_, read) in &parsed {
        if let Ok((table, window)) = read {
            per_table
                .entry(table.clone())
                .and_modify(|w| *w = w.union(*window))
                .or_insert(*window);
        }
    }
    let mut events: HashMap<String, Vec<Record>> = HashMap::new();
    for (table, window) in &per_table {
        events.insert(table.clone(), outbox_events(dynamo, table, *window).await?);
    }

    // Publish each message's events (once per run), delete it when all were accepted.
    let mut done: HashSet<uuid::Uuid> = HashSet::new();
    let mut failed: HashMap<uuid::Uuid, String> = HashMap::new();
    let mut release = Vec::new();
    for (message, read) in parsed {
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let (table, window) = match read {
            Ok(read) => read,
            Err(error) => {
                report.messages.push(MessageOutcome {
                    message_id,
                    table: None,
                    window: None,
                    events: Vec::new(),
                    kept: Some(format!("{error:#}")),
                });
                release.push(message);
                continue;
            }
        };
        let of_window: Vec<Record> = events
            .get(&table)
            .map(|all| {
                all.iter()
                    .filter(|r| window.contains(r.envelope.time))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let ids: Vec<uuid::Uuid> = of_window.iter().map(|r| r.envelope.id).collect();
        if !options.dry_run {
            let todo: Vec<Record> = of_window
                .into_iter()
                .filter(|r| !done.contains(&r.envelope.id) && !failed.contains_key(&r.envelope.id))
                .collect();
            let rejected = publish(publisher, &todo).await;
            for record in &todo {
                if !rejected.iter().any(|(id, _)| *id == record.envelope.id) {
                    done.insert(record.envelope.id);
                    report.published += 1;
                }
            }
            failed.extend(rejected);
        }
        let not_published: Vec<String> = ids
            .iter()
            .filter_map(|id| failed.get(id).map(|reason| format!("{id}: {reason}")))
            .collect();
        let kept = if options.dry_run {
            release.push(message.clone());
            None
        } else if not_published.is_empty() {
            match delete(sqs, dlq_url, &message).await {
                Ok(()) => None,
                Err(error) => Some(format!("published, but not deleted: {error:#}")),
            }
        } else {
            release.push(message.clone());
            Some(format!("not published: {}", not_published.join(", ")))
        };
        report.messages.push(MessageOutcome {
            message_id,
            table: Some(table),
            window: Some(window),
            events: ids,
            kept,
        });
    }
    report.failed = failed.into_iter().collect();
    report.failed.sort();
    release_all(sqs, dlq_url, &release).await?;
    Ok(report)
}

/// `redrive republish --table --since --until`: publishes again every outbox event of `table`
/// in `window`; returns the events and those EventBridge did not accept.
pub async fn republish_window<P: Publisher>(
    dynamo: &aws_sdk_dynamodb::Client,
    publisher: &P,
    table: &str,
    window: Window,
    dry_run: bool,
) -> anyhow::Result<(Vec<Envelope>, Vec<(uuid::Uuid, String)>)> {
    let records = outbox_events(dynamo, table, window).await?;
    let failed = if dry_run {
        Vec::new()
    } else {
        publish(publisher, &records).await
    };
    Ok((records.into_iter().map(|r| r.envelope).collect(), failed))
}

/// Every message of the DLQ (up to `options.max`), each received once: they stay invisible
/// for the visibility timeout.
async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    options: &RepublishOptions,
) -> anyhow::Result<Vec<Message>> {
    let mut messages: Vec<Message> = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let room = options
            .max
            .map_or(crate::BATCH, |max| crate::BATCH.min(max - messages.len()));
        if room == 0 {
            return Ok(messages);
        }
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(i32::try_from(room).unwrap_or(10))
            .visibility_timeout(options.visibility_timeout_s)
            .wait_time_seconds(1)
            .send()
            .await
            .with_context(|| format!("ReceiveMessage {dlq_url}"))?
            .messages
            .unwrap_or_default();
        let before = messages.len();
        for message in received {
            if seen.insert(message.message_id().unwrap_or_default().to_owned()) {
                messages.push(message);
            }
        }
        if messages.len() == before {
            return Ok(messages);
        }
    }
}

async fn delete(sqs: &aws_sdk_sqs::Client, dlq_url: &str, message: &Message) -> anyhow::Result<()> {
    sqs.delete_message()
        .queue_url(dlq_url)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .send()
        .await
        .with_context(|| format!("DeleteMessage {dlq_url}"))?;
    Ok(())
}

/// Makes `messages` visible again at once.
async fn release_all(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    messages: &[Message],
) -> anyhow::Result<()> {
    for chunk in messages.chunks(crate::BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .context("ChangeMessageVisibilityBatch entry")?;
        sqs.change_message_visibility_batch()
            .queue_url(dlq_url)
            .set_entries(Some(entries))
            .send()
            .await
            .with_context(|| format!("ChangeMessageVisibilityBatch {dlq_url}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example invocation record of the AWS Lambda developer guide.
    const AWS_EXAMPLE: &str = r#"{
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001573689847184-864758bb",
            "startSequenceNumber": "800000000003126276362",
            "endSequenceNumber": "800000000003126276362",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
            "batchSize": 1,
            "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
        }
    }"#;

    #[test]
    fn the_documented_on_failure_record_gives_a_table_and_a_window() {
        let record = OnFailureRecord::parse(AWS_EXAMPLE).unwrap();
        assert_eq!(record.table().unwrap(), "mytable");
        assert_eq!(record.batch.batch_size, 1);
        let window = record.window(TimeDelta::seconds(60)).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(window.since, at("2019-11-14T00:12:19Z"));
        assert_eq!(window.until, at("2019-11-14T00:14:19Z"));
        assert!(window.contains(at("2019-11-14T00:13:00Z")));
        assert!(!window.contains(at("2019-11-14T00:15:00Z")));
    }

    #[test]
    fn arrival_times_in_epoch_seconds_are_read_too() {
        let body = AWS_EXAMPLE.replace(r#""2019-11-14T00:13:19Z""#, "1573690399.5");
        let record = OnFailureRecord::parse(&body).unwrap();
        let window = record.window(TimeDelta::zero()).unwrap();
        assert_eq!(window.since.timestamp_millis(), 1_573_690_399_500);
    }

    #[test]
    fn a_stream_arn_names_its_table() {
        assert_eq!(
            table_of_stream(
                "arn:aws:dynamodb:eu-west-1:1:table/shop-dev-orders/stream/2026-01-01T00:00:00.000"
            ),
            Some("shop-dev-orders")
        );
        assert_eq!(table_of_stream("arn:aws:sqs:eu-west-1:1:q"), None);
    }

    #[test]
    fn a_message_that_is_not_an_on_failure_record_is_an_error() {
        assert!(OnFailureRecord::parse(r#"{"hello":"world"}"#).is_err());
    }
}
