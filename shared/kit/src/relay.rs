//! The outbox relay: turns DynamoDB stream records of outbox items into EventBridge
//! `PutEvents`, in batches of at most 10, retrying only the entries EventBridge reports as
//! failed, and reporting the stream records it could not publish as batch item failures (so
//! Lambda retries from there and, past the mapping's retry limit, sends them to the
//! on-failure destination). Each entry carries its outbox record's trace header as
//! `TraceHeader`, so the consumers of the event continue the trace of the request behind it.

use std::{future::Future, time::Duration};

use aws_lambda_events::event::{
    dynamodb::Event as StreamEvent,
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::{
    deadline::{Deadline, Margin},
    error::{EventError, cause_chain},
    metrics::{self, Metric},
    outbox::{self, Record},
    telemetry::{self, Step as _},
};

/// The one relay binary (`shared/outbox-relay`) that publishes every service's outbox: a
/// service has a relay by declaring [`FUNCTION`] and a relay function in its template.
pub const BINARY: &str = "outbox-relay";
/// The variable naming the service whose outbox a relay function publishes (its logs' and
/// metrics' `service`).
pub const SERVICE_VAR: &str = "SERVICE_NAME";
const BUS_VAR: &str = "EVENT_BUS_NAME";
/// The variables a relay function reads.
pub const ENV_VARS: &[&str] = &[SERVICE_VAR, BUS_VAR];
/// The relay function of a service with an outbox, for its `config::FUNCTIONS`.
pub const FUNCTION: crate::config::FunctionEnv = crate::config::FunctionEnv {
    binary: BINARY,
    vars: ENV_VARS,
};

/// Settings of a relay function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The service whose outbox it publishes, e.g. `orders`.
    pub service: String,
    pub event_bus: String,
}

impl Config {
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Ok(Config {
            service: crate::config::required(SERVICE_VAR)?,
            event_bus: crate::config::required(BUS_VAR)?,
        })
    }
}

/// EventBridge accepts at most 10 entries per `PutEvents`.
pub const MAX_BATCH: usize = 10;
/// Attempts per entry within one invocation before it is reported as failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// The backoff before retry `n` is drawn from `[c/2, c]` with `c = min(MAX_BACKOFF,
/// BASE_BACKOFF × 2ⁿ)` ("equal jitter"): never less than half the exponential step, so the
/// retries of many relays throttled at once spread out instead of hitting EventBridge together.
pub const BASE_BACKOFF: Duration = Duration::from_millis(50);
/// The ceiling of one backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The backoff before retry `attempt` (1 = the first retry), `unit` a random draw in `[0, 1]`
/// (clamped).
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let step = BASE_BACKOFF
        .checked_mul(2_u32.saturating_pow(attempt))
        .map_or(MAX_BACKOFF, |step| step.min(MAX_BACKOFF));
    step / 2 + (step / 2).mul_f64(unit.clamp(0.0, 1.0))
}

/// A failure of a whole `PutEvents` call (as opposed to failed entries).
#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed")]
pub struct PublishError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where envelopes are published.
pub trait Publisher: Send + Sync {
    /// Publishes at most [`MAX_BATCH`] outbox records; returns, per entry in order, `None`
    /// when it was accepted or `Some(error code)` when it failed.
    fn publish(
        &self,
        batch: &[Record],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PublishError>> + Send;
}

/// Publishes to an EventBridge bus: `Source` = envelope source, `DetailType` = event type,
/// `Detail` = the envelope, `TraceHeader` = the record's trace header.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus: bus.into(),
        }
    }
}

impl Publisher for EventBridgePublisher {
    async fn publish(&self, batch: &[Record]) -> Result<Vec<Option<String>>, PublishError> {
        let entries = batch
            .iter()
            .map(|record| entry(&self.bus, record))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PublishError(Box::new(e)))?;
        // Boxed: the SDK's future is large, and the relay holds it across its retries.
        let output = Box::pin(self.client.put_events().set_entries(Some(entries)).send())
            .step("eventbridge.PutEvents")
            .await
            .map_err(|e| PublishError(Box::new(e)))?;
        let results = output.entries();
        Ok((0..batch.len())
            .map(|i| match results.get(i) {
                Some(entry) if entry.error_code().is_none() => None,
                Some(entry) => Some(entry.error_code().unwrap_or("Unknown").to_owned()),
                // A missing result entry is a failure we must not paper over.
                None => Some("MissingResult".to_owned()),
            })
            .collect())
    }
}

/// The `PutEvents` entry of `record` for `bus`.
pub fn entry(bus: &str, record: &Record) -> Result<PutEventsRequestEntry, serde_json::Error> {
    let envelope = &record.envelope;
    Ok(PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(&envelope.source)
        .detail_type(&envelope.event_type)
        .detail(serde_json::to_string(envelope)?)
        .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
            envelope.time.timestamp_millis(),
        ))
        .set_trace_header(record.trace_header.clone())
        .build())
}

/// The span of the log lines about one record: its event and the saga (correlation id,
/// trace) it belongs to.
fn record_span(sequence: &str, record: &Record) -> tracing::Span {
    let span = tracing::info_span!(
        "record",
        sequence,
        event_id = %record.envelope.id,
        event_type = record.envelope.event_type,
        correlation_id = record.envelope.correlation_id,
        xray_trace_id = tracing::field::Empty,
    );
    if let Some(root) = record
        .trace_header
        .as_deref()
        .and_then(telemetry::trace_root)
    {
        span.record("xray_trace_id", root);
    }
    span
}

/// Publishes the outbox records of `event` and returns the records it could not publish. No
/// deadline: see [`relay_until`].
pub async fn relay<P: Publisher>(
    service: &str,
    event: StreamEvent,
    publisher: &P,
) -> DynamoDbEventResponse {
    relay_until(service, event, publisher, Deadline::never()).await
}

/// [`relay`] that stops retrying at `deadline`: a `PutEvents` still running then is
/// abandoned, and every record not yet published is reported as failed.
pub async fn relay_until<P: Publisher>(
    service: &str,
    event: StreamEvent,
    publisher: &P,
    deadline: Deadline,
) -> DynamoDbEventResponse {
    // (sequence number, record) of every outbox insert, in stream order.
    let mut pending: Vec<(String, Record)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        match outbox::decode(record.change.new_image) {
            None => {}
            Some(Ok(record)) => pending.push((sequence, record)),
            Some(Err(error)) => {
                tracing::error!(sequence, error.cause_chain = %cause_chain(&error), "undecodable outbox record");
                failed.push(sequence);
            }
        }
    }
    let mut published = 0_u32;
    'attempts: for attempt in 0..MAX_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            let delay = backoff(attempt, fastrand::f64());
            if deadline.remaining().is_some_and(|left| left <= delay) {
                tracing::warn!(
                    attempt,
                    "invocation deadline too close for another attempt: the rest is reported as failed"
                );
                break;
            }
            tokio::time::sleep(delay).await;
        }
        let mut retry = Vec::new();
        let mut chunks = pending.chunks(MAX_BATCH);
        for chunk in chunks.by_ref() {
            let records: Vec<Record> = chunk.iter().map(|(_, r)| r.clone()).collect();
            match deadline.run(publisher.publish(&records)).await {
                Some(Ok(results)) => {
                    for ((sequence, record), result) in chunk.iter().zip(results) {
                        let _span = record_span(sequence, record).entered();
                        match result {
                            None => {
                                published += 1;
                                tracing::info!("event published");
                            }
                            Some(code) => {
                                tracing::warn!(code, attempt, "entry not accepted by EventBridge");
                                retry.push((sequence.clone(), record.clone()));
                            }
                        }
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(attempt, error.cause_chain = %cause_chain(&error), "PutEvents call failed");
                    retry.extend(chunk.iter().cloned());
                }
                None => {
                    // The call may have gone through: a republished event is ignored by its
                    // consumers (same event id).
                    tracing::warn!(
                        attempt,
                        "invocation deadline reached during PutEvents: abandoned, the rest is reported as failed"
                    );
                    retry.extend(chunk.iter().cloned());
                    retry.extend(chunks.flatten().cloned());
                    pending = retry;
                    break 'attempts;
                }
            }
        }
        pending = retry;
    }
    for (sequence, record) in &pending {
        let _span = record_span(sequence, record).entered();
        tracing::error!("could not publish; reported as a batch item failure");
    }
    failed.extend(pending.into_iter().map(|(sequence, _)| sequence));
    metrics::emit_per_version(
        service,
        &[
            Metric::count("EventsPublished", published),
            Metric::count(
                "EventsNotPublished",
                u32::try_from(failed.len()).unwrap_or(u32::MAX),
            ),
        ],
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            failure
        })
        .collect();
    response
}

/// Serves the relay of `service` as a stream-triggered Lambda function, stopping a margin
/// before each invocation's deadline ([`crate::deadline`]).
pub async fn run<P: Publisher>(
    service: &'static str,
    publisher: P,
) -> Result<(), lambda_runtime::Error> {
    let margin = Margin::from_env()?;
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamEvent>| {
        let deadline = Deadline::of_invocation(&event.context, margin);
        telemetry::invocation(
            &event.context.request_id,
            event.context.xray_trace_id.as_deref(),
            async move {
                Ok::<_, EventError>(relay_until(service, event.payload, publisher, deadline).await)
            },
        )
    }))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;

    use super::*;
    use crate::events::{Envelope, Event, NotificationSent};

    /// Accepts everything except the envelopes listed in `reject`, `fails` times each; the
    /// calls listed in `slow` (0 = the first) take a minute.
    #[derive(Default)]
    struct Flaky {
        reject: Mutex<Vec<(uuid::Uuid, u32)>>,
        slow: Vec<usize>,
        calls: Mutex<Vec<usize>>,
        published: Mutex<Vec<uuid::Uuid>>,
        trace_headers: Mutex<Vec<Option<String>>>,
    }

    impl Publisher for Flaky {
        async fn publish(&self, batch: &[Record]) -> Result<Vec<Option<String>>, PublishError> {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(batch.len());
                calls.len() - 1
            };
            if self.slow.contains(&call) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            let mut reject = self.reject.lock().unwrap();
            Ok(batch
                .iter()
                .map(
                    |record| match reject.iter_mut().find(|(id, _)| *id == record.envelope.id) {
                        Some((_, left)) if *left > 0 => {
                            *left -= 1;
                            Some("ThrottlingException".to_owned())
                        }
                        _ => {
                            self.published.lock().unwrap().push(record.envelope.id);
                            self.trace_headers
                                .lock()
                                .unwrap()
                                .push(record.trace_header.clone());
                            None
                        }
                    },
                )
                .collect())
        }
    }

    fn envelope(n: usize) -> Envelope {
        let event = Event::NotificationSent(NotificationSent {
            notification_id: format!("n{n}"),
            customer_id: "c".into(),
            order_id: "o".into(),
            about: "OrderConfirmed".into(),
            channel: "record".into(),
            sent_at: Utc::now(),
        });
        Envelope::new("shop.notify", &event, "corr", None, Utc::now()).unwrap()
    }

    fn stream_event(envelopes: &[Envelope]) -> StreamEvent {
        let records: Vec<serde_json::Value> = envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| {
                let item = outbox::item(envelope).unwrap();
                let image: serde_json::Value = serde_json::to_value(
                    serde_dynamo::from_item::<_, serde_json::Value>(item).unwrap(),
                )
                .unwrap();
                let image: serde_dynamo::Item = serde_dynamo::to_item(image).unwrap();
                serde_json::json!({
                    "eventID": format!("e{i}"), "eventName": "INSERT", "awsRegion": "eu-west-1",
                    "dynamodb": {
                        "ApproximateCreationDateTime": 1.7e9, "Keys": {}, "NewImage": image,
                        "SequenceNumber": format!("{:05}", i), "SizeBytes": 1,
                        "StreamViewType": "NEW_IMAGE",
                    },
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn each_event_is_published_with_the_trace_header_it_was_written_with() {
        let header = "Root=1-6a2b3c4d-ffffffffffffffffffffffff;Parent=6666666666666666;Sampled=1";
        let traced = envelope(0);
        let untraced = envelope(1);
        let stream = telemetry::invocation("http-req", Some(header), async {
            stream_event(std::slice::from_ref(&traced))
        })
        .await;
        let mut event = stream_event(std::slice::from_ref(&untraced));
        event.records.extend(stream.records);
        let publisher = Flaky::default();
        let response = telemetry::invocation(
            "relay-req",
            Some("Root=1-6a2b3c4d-000000000000000000000000;Sampled=1"),
            relay("test", event, &publisher),
        )
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            *publisher.trace_headers.lock().unwrap(),
            [None, Some(header.to_owned())],
            "the writer's trace, never the relay invocation's own"
        );
        let sent = entry(
            "bus",
            &Record {
                envelope: traced,
                trace_header: Some(header.into()),
            },
        )
        .unwrap();
        assert_eq!(sent.trace_header(), Some(header));
    }

    #[tokio::test]
    async fn records_are_published_in_batches_of_ten() {
        let envelopes: Vec<Envelope> = (0..23).map(envelope).collect();
        let publisher = Flaky::default();
        let response = relay("test", stream_event(&envelopes), &publisher).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*publisher.calls.lock().unwrap(), [10, 10, 3]);
        assert_eq!(publisher.published.lock().unwrap().len(), 23);
    }

    #[tokio::test]
    async fn only_failed_entries_are_retried() {
        let envelopes: Vec<Envelope> = (0..4).map(envelope).collect();
        let publisher = Flaky::default();
        publisher.reject.lock().unwrap().push((envelopes[2].id, 1));
        let response = relay("test", stream_event(&envelopes), &publisher).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*publisher.calls.lock().unwrap(), [4, 1]);
        assert_eq!(publisher.published.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn entries_failing_every_attempt_are_reported_by_sequence_number() {
        let envelopes: Vec<Envelope> = (0..3).map(envelope).collect();
        let publisher = Flaky::default();
        publisher
            .reject
            .lock()
            .unwrap()
            .push((envelopes[1].id, u32::MAX));
        crate::metrics::capture::start("shop-dev-notify-relay", "3");
        let response = relay("test", stream_event(&envelopes), &publisher).await;
        let docs = crate::metrics::capture::take();
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        assert_eq!(failed, ["00001"]);
        assert_eq!(publisher.calls.lock().unwrap().len(), MAX_ATTEMPTS as usize);
        // What the relay's rollback alarm watches: the count, for this function version.
        let doc = docs
            .iter()
            .find(|d| d.get("EventsNotPublished").is_some())
            .expect("an EMF document with EventsNotPublished");
        assert_eq!(doc["EventsNotPublished"], 1.0);
        assert_eq!(doc["EventsPublished"], 2.0);
        assert_eq!(doc["function"], "shop-dev-notify-relay");
        assert_eq!(doc["version"], "3");
    }

    fn failed_sequences(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_put_events_call_past_the_deadline_is_abandoned_and_the_rest_reported() {
        let envelopes: Vec<Envelope> = (0..23).map(envelope).collect();
        let publisher = Flaky {
            slow: vec![1],
            ..Flaky::default()
        };
        let budget = Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        let response = relay_until(
            "test",
            stream_event(&envelopes),
            &publisher,
            Deadline::after(budget),
        )
        .await;
        let elapsed = started.elapsed();
        assert!(
            elapsed <= budget,
            "the response came {elapsed:?} after the start, past the {budget:?} deadline"
        );
        let expected: Vec<String> = (10..23).map(|i| format!("{i:05}")).collect();
        assert_eq!(failed_sequences(&response), expected);
        assert_eq!(publisher.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_when_its_backoff_would_end_past_the_deadline() {
        let envelopes: Vec<Envelope> = (0..2).map(envelope).collect();
        let publisher = Flaky::default();
        publisher
            .reject
            .lock()
            .unwrap()
            .push((envelopes[0].id, u32::MAX));
        // The first retry waits 50–100 ms, the second 100–200 ms: only the first fits.
        let budget = Duration::from_millis(120);
        let started = tokio::time::Instant::now();
        let response = relay_until(
            "test",
            stream_event(&envelopes),
            &publisher,
            Deadline::after(budget),
        )
        .await;
        assert!(started.elapsed() <= budget, "{:?}", started.elapsed());
        assert_eq!(failed_sequences(&response), ["00000"]);
        assert_eq!(*publisher.calls.lock().unwrap(), [2, 1]);
    }

    #[test]
    fn backoff_is_jittered_between_half_and_all_of_the_exponential_step() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(2, 0.5), Duration::from_millis(150));
        assert_eq!(backoff(30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(30, 0.0), MAX_BACKOFF / 2);
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<Duration> = (0..100).map(|_| backoff(2, rng.f64())).collect();
        assert!(
            draws
                .iter()
                .all(|d| (Duration::from_millis(100)..=Duration::from_millis(200)).contains(d)),
            "{draws:?}"
        );
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 50, "hardly any jitter: {distinct:?}");
    }
}
