//! SQS event source mappings: poll a queue in batches, invoke the function with the SQS event,
//! delete what succeeded and leave failures to the visibility timeout (and so to the redrive
//! policy and the DLQ), like Lambda's poller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use axum::body::Bytes;
use serde_json::{Map, Value, json};

use crate::functions::SqsMapping;
use crate::report::{Delivery, Reporter, correlation_id};
use crate::resources::QueueInfo;
use crate::runtime::{FunctionPool, Outcome};

/// The `WaitTimeSeconds` of an empty poll: SQS's longest, as Lambda's pollers use.
pub const LONG_POLL_S: i32 = 20;

/// One SQS mapping to run.
#[derive(Debug, Clone)]
pub struct SqsPoller {
    pub mapping: SqsMapping,
    pub queue: QueueInfo,
    pub function: Arc<FunctionPool>,
    pub sqs: aws_sdk_sqs::Client,
    pub region: String,
    pub reporter: Arc<Reporter>,
}

impl SqsPoller {
    /// Runs as many polling loops as the mapping's concurrency allows; never returns.
    pub async fn run(self) {
        let n = self
            .mapping
            .max_concurrency
            .unwrap_or(2)
            .min(self.function.limit())
            .max(1);
        let this = Arc::new(self);
        let loops: Vec<_> = (0..n)
            .map(|_| tokio::spawn(this.clone().poll_loop()))
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn poll_loop(self: Arc<Self>) {
        loop {
            match self.receive_batch().await {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => self.deliver(batch).await,
                Err(e) => {
                    eprintln!("local-stack: polling {} failed: {e:#}", self.queue.name);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Receives up to `BatchSize` messages as Lambda does: long polls (up to [`LONG_POLL_S`])
    /// that return as soon as a message is there, then, when the mapping has a batching window,
    /// keeps receiving until the batch is full or the window (counted from the first message)
    /// has passed.
    async fn receive_batch(&self) -> anyhow::Result<Vec<Message>> {
        let mut batch: Vec<Message> = Vec::new();
        let window = Duration::from_secs(self.mapping.window_s);
        let mut first_at: Option<Instant> = None;
        loop {
            let want = (self.mapping.batch_size - batch.len()).min(10) as i32;
            let wait = if batch.is_empty() { LONG_POLL_S } else { 0 };
            let resp = self
                .sqs
                .receive_message()
                .queue_url(&self.queue.url)
                .max_number_of_messages(want)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await?;
            let got = resp.messages().len();
            batch.extend(resp.messages.unwrap_or_default());
            if batch.is_empty() {
                return Ok(batch);
            }
            let first = *first_at.get_or_insert_with(Instant::now);
            if batch.len() >= self.mapping.batch_size || first.elapsed() >= window {
                return Ok(batch);
            }
            if got == 0 {
                let left = window.saturating_sub(first.elapsed());
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
        }
    }

    async fn deliver(&self, batch: Vec<Message>) {
        let started = Instant::now();
        let event = json!({ "Records": batch.iter().map(|m| self.record(m)).collect::<Vec<_>>() });
        let ids: Vec<String> = batch.iter().filter_map(|m| m.message_id.clone()).collect();
        let invoked = self.function.invoke(Bytes::from(event.to_string())).await;
        let (delete, failed, outcome) = match &invoked.outcome {
            Outcome::Response(_) => {
                let failed: Vec<String> = if self.mapping.report_failures {
                    invoked.outcome.batch_item_failures()
                } else {
                    Vec::new()
                };
                // An identifier that is not in the batch fails the whole batch, as on Lambda.
                if failed.iter().any(|f| !ids.contains(f)) {
                    (
                        Vec::new(),
                        ids.clone(),
                        "invalid batchItemFailures: batch retried".to_owned(),
                    )
                } else {
                    let delete: Vec<&Message> = batch
                        .iter()
                        .filter(|m| m.message_id.as_ref().is_none_or(|id| !failed.contains(id)))
                        .collect();
                    (delete, failed, "ok".to_owned())
                }
            }
            other => (Vec::new(), ids.clone(), other.describe()),
        };
        if let Err(e) = self.delete(&delete).await {
            eprintln!(
                "local-stack: deleting from {} failed: {e:#}",
                self.queue.name
            );
        }
        self.reporter.record(Delivery {
            function: self.function.spec().name.clone(),
            source: "sqs".into(),
            ids,
            failed_ids: failed,
            success: invoked.outcome.is_success(),
            outcome,
            correlation_id: correlation_id(&event),
            duration: started.elapsed(),
            ..Delivery::saga(&event, &invoked)
        });
    }

    async fn delete(&self, messages: &[&Message]) -> anyhow::Result<()> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        Ok(())
    }

    /// One record of the SQS event, as Lambda builds it.
    fn record(&self, m: &Message) -> Value {
        let mut attributes = Map::new();
        for (k, v) in m.attributes().into_iter().flatten() {
            attributes.insert(k.as_str().to_owned(), Value::String(v.clone()));
        }
        let mut message_attributes = Map::new();
        for (k, v) in m.message_attributes().into_iter().flatten() {
            let mut a = Map::new();
            a.insert("dataType".into(), json!(v.data_type()));
            if let Some(s) = v.string_value() {
                a.insert("stringValue".into(), json!(s));
            }
            if let Some(b) = v.binary_value() {
                use base64::Engine as _;
                a.insert(
                    "binaryValue".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(b.as_ref())),
                );
            }
            a.insert("stringListValues".into(), json!([]));
            a.insert("binaryListValues".into(), json!([]));
            message_attributes.insert(k.clone(), Value::Object(a));
        }
        let mut r = json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body().unwrap_or_default(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.arn,
            "awsRegion": self.region,
        });
        if let Some(md5) = m.md5_of_message_attributes() {
            r["md5OfMessageAttributes"] = json!(md5);
        }
        r
    }
}

/// Counts of deliveries per message id (tests use it to prove "processed once").
pub fn deliveries_per_message(reporter: &Reporter) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for d in reporter
        .deliveries()
        .into_iter()
        .filter(|d| d.source == "sqs")
    {
        for id in d.ids {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}
