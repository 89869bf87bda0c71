//! DynamoDB stream event source mappings: read each shard in order, drop records the
//! `FilterCriteria` rejects, invoke the function in batches, resume from the first record in
//! `batchItemFailures` (or retry the whole batch on an error), and after `MaximumRetryAttempts`
//! send the batch's metadata to the `OnFailure` destination and move on, like Lambda.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use axum::body::Bytes;
use serde_json::{Map, Value, json};

use crate::functions::StreamMapping;
use crate::report::{Delivery, Reporter, correlation_id};
use crate::runtime::{FunctionPool, Outcome};

/// How long an idle shard waits between `GetRecords` calls: Lambda polls each shard of a
/// DynamoDB stream about four times a second.
pub const IDLE_POLL: Duration = Duration::from_millis(250);

/// One stream mapping to run.
#[derive(Debug, Clone)]
pub struct StreamPoller {
    pub mapping: StreamMapping,
    pub function: Arc<FunctionPool>,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The `OnFailure` destination's queue URL.
    pub on_failure_url: Option<String>,
    pub region: String,
    pub reporter: Arc<Reporter>,
}

impl StreamPoller {
    /// Polls every shard of the stream; never returns.
    pub async fn run(self) {
        let this = Arc::new(self);
        let mut started: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            match this
                .streams
                .describe_stream()
                .stream_arn(&this.mapping.stream_arn)
                .send()
                .await
            {
                Ok(d) => {
                    for shard in d
                        .stream_description()
                        .map(|s| s.shards())
                        .unwrap_or_default()
                    {
                        let Some(id) = shard.shard_id() else { continue };
                        if !started.contains_key(id) {
                            let t = tokio::spawn(this.clone().shard_loop(id.to_owned()));
                            started.insert(id.to_owned(), t);
                        }
                    }
                }
                Err(e) => eprintln!(
                    "local-stack: describing {} failed: {e}",
                    this.mapping.stream_arn
                ),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    async fn shard_loop(self: Arc<Self>, shard_id: String) {
        let kind = if self.mapping.starting_position == "LATEST" {
            ShardIteratorType::Latest
        } else {
            ShardIteratorType::TrimHorizon
        };
        let mut iterator = loop {
            match self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.mapping.stream_arn)
                .shard_id(&shard_id)
                .shard_iterator_type(kind.clone())
                .send()
                .await
            {
                Ok(r) => break r.shard_iterator,
                Err(e) => {
                    eprintln!("local-stack: shard iterator for {shard_id} failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut buffer: VecDeque<Value> = VecDeque::new();
        let mut attempts = 0i64;
        let mut batch_started: Option<Instant> = None;
        loop {
            if let Some(it) = iterator.clone() {
                match self
                    .streams
                    .get_records()
                    .shard_iterator(it)
                    .limit(1000)
                    .send()
                    .await
                {
                    Ok(r) => {
                        iterator = r.next_shard_iterator.clone();
                        for rec in r.records() {
                            let v = self.record_json(rec);
                            if self.mapping.filters.is_empty()
                                || self
                                    .mapping
                                    .filters
                                    .iter()
                                    .any(|f| crate::pattern::matches(f, &v))
                            {
                                buffer.push_back(v);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("local-stack: reading {shard_id} failed: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            if buffer.is_empty() {
                batch_started = None;
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            // Batching window: wait for more records unless the batch is full.
            let first_seen = *batch_started.get_or_insert_with(Instant::now);
            let window = Duration::from_secs(self.mapping.window_s);
            if buffer.len() < self.mapping.batch_size && first_seen.elapsed() < window {
                let left = window.saturating_sub(first_seen.elapsed());
                tokio::time::sleep(left.min(IDLE_POLL)).await;
                continue;
            }
            let n = buffer.len().min(self.mapping.batch_size);
            let batch: Vec<Value> = buffer.iter().take(n).cloned().collect();
            match self.deliver(&batch).await {
                None => {
                    buffer.drain(..n);
                    attempts = 0;
                    batch_started = None;
                }
                Some(first_failed) => {
                    // Checkpoint before the first failed record and retry from it.
                    buffer.drain(..first_failed);
                    attempts += 1;
                    if self.mapping.max_retries >= 0 && attempts > self.mapping.max_retries {
                        let rest: Vec<Value> =
                            buffer.iter().take(n - first_failed).cloned().collect();
                        self.send_to_on_failure(&shard_id, &rest, attempts).await;
                        buffer.drain(..rest.len());
                        attempts = 0;
                    } else {
                        tokio::time::sleep(Duration::from_millis(500 * attempts.min(4) as u64))
                            .await;
                    }
                }
            }
        }
    }

    /// Invokes the function with a batch; `None` when all succeeded, else the index of the
    /// first record to retry from.
    async fn deliver(&self, batch: &[Value]) -> Option<usize> {
        let started = Instant::now();
        let event = json!({ "Records": batch });
        let seqs: Vec<String> = batch
            .iter()
            .filter_map(|r| {
                r.pointer("/dynamodb/SequenceNumber")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let invoked = self.function.invoke(Bytes::from(event.to_string())).await;
        let (retry_from, failed, outcome) = match &invoked.outcome {
            Outcome::Response(_) => {
                let failed: Vec<String> = if self.mapping.report_failures {
                    invoked.outcome.batch_item_failures()
                } else {
                    Vec::new()
                };
                let first = seqs.iter().position(|s| failed.contains(s));
                match (failed.is_empty(), first) {
                    (true, _) => (None, failed, "ok".to_owned()),
                    (false, Some(i)) => (
                        Some(i),
                        failed,
                        format!("partial failure, retrying from record {i}"),
                    ),
                    (false, None) => (
                        Some(0),
                        failed,
                        "invalid batchItemFailures: batch retried".to_owned(),
                    ),
                }
            }
            other => (Some(0), seqs.clone(), other.describe()),
        };
        self.reporter.record(Delivery {
            function: self.function.spec().name.clone(),
            source: "dynamodb".into(),
            ids: seqs,
            failed_ids: failed,
            success: retry_from.is_none(),
            outcome,
            correlation_id: correlation_id(&event),
            duration: started.elapsed(),
            ..Delivery::saga(&event, &invoked)
        });
        retry_from
    }

    async fn send_to_on_failure(&self, shard_id: &str, batch: &[Value], attempts: i64) {
        let seq = |r: Option<&Value>| {
            r.and_then(|r| r.pointer("/dynamodb/SequenceNumber").cloned())
                .unwrap_or(Value::Null)
        };
        let record = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function.spec().arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": { "statusCode": 200, "executedVersion": "$LATEST" },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": seq(batch.first()),
                "endSequenceNumber": seq(batch.last()),
                "approximateArrivalOfFirstRecord": batch.first().and_then(|r| r.pointer("/dynamodb/ApproximateCreationDateTime")).cloned(),
                "approximateArrivalOfLastRecord": batch.last().and_then(|r| r.pointer("/dynamodb/ApproximateCreationDateTime")).cloned(),
                "batchSize": batch.len(),
                "streamArn": self.mapping.stream_arn,
            },
        });
        eprintln!(
            "local-stack: {} gave up on {} stream records after {attempts} attempts",
            self.function.spec().name,
            batch.len()
        );
        if let Some(url) = &self.on_failure_url
            && let Err(e) = self
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(record.to_string())
                .send()
                .await
        {
            eprintln!("local-stack: sending to the OnFailure destination failed: {e}");
        }
    }

    /// One record of the DynamoDB stream event, as Lambda builds it.
    fn record_json(&self, r: &Record) -> Value {
        let mut d = Map::new();
        if let Some(s) = r.dynamodb() {
            if let Some(t) = s.approximate_creation_date_time() {
                d.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
            }
            for (k, img) in [
                ("Keys", s.keys()),
                ("NewImage", s.new_image()),
                ("OldImage", s.old_image()),
            ] {
                if let Some(img) = img {
                    d.insert(k.into(), image(img));
                }
            }
            d.insert("SequenceNumber".into(), json!(s.sequence_number()));
            d.insert("SizeBytes".into(), json!(s.size_bytes()));
            d.insert(
                "StreamViewType".into(),
                json!(s.stream_view_type().map(|v| v.as_str())),
            );
        }
        json!({
            "eventID": r.event_id(),
            "eventName": r.event_name().map(|e| e.as_str()),
            "eventVersion": r.event_version().unwrap_or("1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": r.aws_region().unwrap_or(&self.region),
            "dynamodb": d,
            "eventSourceARN": self.mapping.stream_arn,
        })
    }
}

fn image(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
}

fn attr(v: &AttributeValue) -> Value {
    use base64::Engine as _;
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Ss(l) => json!({"SS": l}),
        AttributeValue::Ns(l) => json!({"NS": l}),
        AttributeValue::Bs(l) => json!({"BS": l.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": image(m)}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attr).collect::<Vec<_>>()}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        _ => Value::Null,
    }
}
