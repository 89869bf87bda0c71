//! SQS batches of EventBridge events carrying our envelope: each message is handled on its own,
//! and only the failed ones are reported back (`ReportBatchItemFailures`), so one bad message
//! never fails or blocks its batch.

use std::{error::Error as StdError, future::Future};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;

use crate::{
    deadline::{Deadline, Margin},
    error::{EventError, cause_chain},
    events::{ContractError, Envelope, Event},
    metrics::{self, Metric},
    telemetry,
};

/// One message of a batch, parsed and decoded.
#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: String,
    /// How many times SQS has delivered this message (1 on the first delivery).
    pub receive_count: u32,
    pub envelope: Envelope,
    pub event: Event,
}

/// Why a message body cannot be handled at all: it will fail every time and end in the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum PoisonMessage {
    #[error("the body is not an EventBridge event with our envelope")]
    Body(#[source] serde_json::Error),
    #[error("the message has no body")]
    NoBody,
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error("the EventBridge source `{bus}` differs from the envelope's `{envelope}`")]
    SourceMismatch { bus: String, envelope: String },
}

/// The EventBridge event SQS receives from a rule target.
#[derive(Deserialize)]
struct EventBridgeEvent {
    source: String,
    detail: Envelope,
}

/// Parses one SQS record into a [`Message`].
pub fn parse(record: &SqsMessage) -> Result<Message, PoisonMessage> {
    let body = record.body.as_deref().ok_or(PoisonMessage::NoBody)?;
    let parsed: EventBridgeEvent = serde_json::from_str(body).map_err(PoisonMessage::Body)?;
    if parsed.source != parsed.detail.source {
        return Err(PoisonMessage::SourceMismatch {
            bus: parsed.source,
            envelope: parsed.detail.source,
        });
    }
    let event = parsed.detail.decode()?;
    Ok(Message {
        message_id: record.message_id.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        envelope: parsed.detail,
        event,
    })
}

/// Runs `handler` over every message of `event`, one after the other (so two events of one
/// order in a batch keep their order), and returns only the failed message ids. No deadline:
/// see [`process_batch_until`].
pub async fn process_batch<F, Fut, E>(
    service: &str,
    event: SqsEvent,
    handler: F,
) -> SqsBatchResponse
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: StdError + 'static,
{
    process_batch_until(service, event, Deadline::never(), handler).await
}

/// [`process_batch`] that stops at `deadline`: a handler still running then is abandoned, and
/// its message and every message not started are reported as batch item failures.
pub async fn process_batch_until<F, Fut, E>(
    service: &str,
    event: SqsEvent,
    deadline: Deadline,
    handler: F,
) -> SqsBatchResponse
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: StdError + 'static,
{
    let mut failures = Vec::new();
    let total = event.records.len();
    for (index, record) in event.records.iter().enumerate() {
        let message_id = record.message_id.clone().unwrap_or_default();
        if deadline.is_past() {
            let left: Vec<String> = event.records[index..]
                .iter()
                .map(|r| r.message_id.clone().unwrap_or_default())
                .collect();
            tracing::warn!(
                not_started = left.len(),
                "invocation deadline reached: the messages not started are reported as batch item failures"
            );
            failures.extend(left.into_iter().map(failure));
            break;
        }
        let outcome = telemetry::message(
            &message_id,
            raw_correlation_id(record).as_deref(),
            trace_header(record),
            async {
            match parse(record) {
                Err(poison) => {
                    tracing::error!(
                        error.cause_chain = %cause_chain(&poison),
                        "poison message: reported as a batch item failure, it will reach the DLQ"
                    );
                    Err(())
                }
                Ok(message) => {
                    let event_type = message.envelope.event_type.clone();
                    match deadline.run(handler(message)).await {
                        Some(Ok(())) => Ok(()),
                        Some(Err(error)) => {
                            tracing::error!(
                                event_type,
                                error.cause_chain = %cause_chain(&error),
                                "message failed: reported as a batch item failure for a retry"
                            );
                            Err(())
                        }
                        None => {
                            // Its effect may or may not have committed: the redelivery finds
                            // the processed marker in the first case and has the effect in the
                            // second.
                            tracing::warn!(
                                event_type,
                                "invocation deadline reached while handling the message: abandoned, reported as a batch item failure"
                            );
                            Err(())
                        }
                    }
                }
            }
        },
        )
        .await;
        if outcome.is_err() {
            failures.push(failure(message_id));
        }
    }
    let failed = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    metrics::emit_per_version(
        service,
        &[
            Metric::count(
                "MessagesProcessed",
                u32::try_from(total).unwrap_or(u32::MAX) - failed,
            ),
            Metric::count("MessagesFailed", failed),
        ],
    );
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// The correlation id a message's body carries (`detail.correlation_id`), read without
/// decoding the envelope: a poison message is logged with its own id when it has one.
fn raw_correlation_id(record: &SqsMessage) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(record.body.as_deref()?).ok()?;
    body.pointer("/detail/correlation_id")?
        .as_str()
        .map(str::to_owned)
}

/// The X-Ray trace header EventBridge gave the message (SQS's `AWSTraceHeader` system
/// attribute): the trace of the request that caused the event.
pub fn trace_header(record: &SqsMessage) -> Option<&str> {
    record
        .attributes
        .get("AWSTraceHeader")
        .map(String::as_str)
        .filter(|h| !h.is_empty())
}

fn failure(message_id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id;
    failure
}

/// Serves `handler` as an SQS-triggered Lambda function of `service`, stopping a margin before
/// each invocation's deadline ([`crate::deadline`]).
pub async fn run<F, Fut, E>(service: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: StdError + 'static,
{
    let margin = Margin::from_env()?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deadline = Deadline::of_invocation(&event.context, margin);
        // Boxed: a batch future holds the handler's future, which can be large.
        Box::pin(telemetry::invocation(
            &event.context.request_id,
            event.context.xray_trace_id.as_deref(),
            async move {
                Ok::<_, EventError>(
                    process_batch_until(service, event.payload, deadline, handler).await,
                )
            },
        ))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use std::{sync::Mutex, time::Duration};

    use chrono::Utc;

    use super::*;
    use crate::events::{Event, NotificationSent};

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(body.into());
        message
    }

    fn valid_body(order_id: &str) -> String {
        let event = Event::NotificationSent(NotificationSent {
            notification_id: "n".into(),
            customer_id: "c".into(),
            order_id: order_id.into(),
            about: "OrderConfirmed".into(),
            channel: "record".into(),
            sent_at: Utc::now(),
        });
        let envelope = Envelope::new("shop.notify", &event, "corr", None, Utc::now()).unwrap();
        serde_json::json!({
            "version": "0", "id": "eb-1", "detail-type": "NotificationSent",
            "source": "shop.notify", "detail": envelope,
        })
        .to_string()
    }

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    #[tokio::test]
    async fn only_poison_and_failed_messages_are_reported_and_the_rest_are_handled() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("m1", &valid_body("o1")),
            record("m2", "not json"),
            record("m3", &valid_body("fail")),
            record("m4", &valid_body("o4")),
            record("m5", &valid_body("o5")),
        ];
        let handled = Mutex::new(Vec::new());
        crate::metrics::capture::start("shop-dev-notify-events", "5");
        let response = process_batch("test", event, |message: Message| {
            let handled = &handled;
            async move {
                let Event::NotificationSent(sent) = message.event else {
                    return Err(Boom);
                };
                if sent.order_id == "fail" {
                    return Err(Boom);
                }
                handled.lock().unwrap().push(sent.order_id);
                Ok(())
            }
        })
        .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m2", "m3"]);
        assert_eq!(*handled.lock().unwrap(), ["o1", "o4", "o5"]);
        // What the consumer's rollback alarm watches: the count, for this function version.
        let docs = crate::metrics::capture::take();
        let doc = docs
            .iter()
            .find(|d| d.get("MessagesFailed").is_some())
            .expect("an EMF document with MessagesFailed");
        assert_eq!(doc["MessagesFailed"], 2.0);
        assert_eq!(doc["MessagesProcessed"], 3.0);
        assert_eq!(doc["function"], "shop-dev-notify-events");
        assert_eq!(doc["version"], "5");
    }

    #[test]
    fn an_event_from_a_source_that_does_not_own_its_type_is_poison() {
        // NotificationSent belongs to notify: the same event claiming to come from orders.
        let body = valid_body("o").replace("shop.notify", "shop.orders");
        assert!(parse(&record("m", &body)).is_err());
    }

    #[test]
    fn an_envelope_whose_source_differs_from_the_eventbridge_source_is_poison() {
        let mut forged: serde_json::Value = serde_json::from_str(&valid_body("o")).unwrap();
        forged["source"] = "shop.payments".into();
        assert!(parse(&record("m", &forged.to_string())).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_stops_at_its_deadline_and_reports_the_slow_message_and_those_not_started() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("m1", &valid_body("o1")),
            record("m2", &valid_body("slow")),
            record("m3", &valid_body("o3")),
            record("m4", &valid_body("o4")),
        ];
        let budget = Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        let handled = Mutex::new(Vec::new());
        let response = process_batch_until(
            "test",
            event,
            Deadline::after(budget),
            |message: Message| {
                let handled = &handled;
                async move {
                    let Event::NotificationSent(sent) = message.event else {
                        return Err(Boom);
                    };
                    if sent.order_id == "slow" {
                        // Longer than the time left (tokio's clock is paused: no real wait).
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    handled.lock().unwrap().push(sent.order_id);
                    Ok(())
                }
            },
        )
        .await;
        let elapsed = started.elapsed();
        assert!(
            elapsed <= budget,
            "the response came {elapsed:?} after the start, past the {budget:?} deadline"
        );
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m2", "m3", "m4"]);
        assert_eq!(*handled.lock().unwrap(), ["o1"]);
    }

    #[tokio::test]
    async fn a_poison_message_after_a_good_one_is_logged_with_its_own_ids_not_the_good_ones() {
        let (subscriber, log) = crate::telemetry::test_log::subscriber();
        let _default = tracing::subscriber::set_default(subscriber);
        let poison = valid_body("o2")
            .replace("\"type\":\"NotificationSent\"", "\"type\":\"Nope\"")
            .replace(
                "\"correlation_id\":\"corr\"",
                "\"correlation_id\":\"corr-2\"",
            );
        let mut event = SqsEvent::default();
        event.records = vec![
            record("m1", &valid_body("o1")),
            record("m2", &poison),
            record("m3", "not json"),
        ];
        crate::telemetry::invocation(
            "req-1",
            None,
            process_batch("test", event, |_: Message| async { Ok::<(), Boom>(()) }),
        )
        .await;
        let lines = log.lines();
        let poison_lines: Vec<_> = lines
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("poison"))
            })
            .collect();
        assert_eq!(poison_lines.len(), 2, "{lines:?}");
        assert_eq!(poison_lines[0]["message_id"], "m2");
        assert_eq!(
            poison_lines[0]["correlation_id"], "corr-2",
            "its own correlation id, read from the body it could not decode"
        );
        assert_eq!(poison_lines[1]["message_id"], "m3");
        assert!(
            poison_lines[1].get("correlation_id").is_none(),
            "no correlation id rather than the previous message's: {}",
            poison_lines[1]
        );
    }

    #[tokio::test]
    async fn a_message_continues_the_trace_eventbridge_gave_it() {
        let (subscriber, log) = crate::telemetry::test_log::subscriber();
        let _default = tracing::subscriber::set_default(subscriber);
        let traced = "Root=1-6a2b3c4d-cccccccccccccccccccccccc;Parent=3333333333333333;Sampled=1";
        let mut first = record("m1", &valid_body("o1"));
        first
            .attributes
            .insert("AWSTraceHeader".into(), traced.into());
        let mut event = SqsEvent::default();
        event.records = vec![first, record("m2", &valid_body("o2"))];
        let seen = Mutex::new(Vec::new());
        let invocation =
            "Root=1-6a2b3c4d-dddddddddddddddddddddddd;Parent=4444444444444444;Sampled=1";
        crate::telemetry::invocation(
            "req-1",
            Some(invocation),
            process_batch("test", event, |m: Message| {
                seen.lock()
                    .unwrap()
                    .push((m.message_id.clone(), crate::telemetry::trace_header()));
                tracing::info!("handled");
                async { Ok::<(), Boom>(()) }
            }),
        )
        .await;
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("m1".to_owned(), Some(traced.to_owned())),
                ("m2".to_owned(), Some(invocation.to_owned()))
            ],
            "the events a message causes join its trace; without one, the invocation's"
        );
        let handled: Vec<_> = log
            .lines()
            .into_iter()
            .filter(|l| l["message"] == "handled")
            .collect();
        assert_eq!(
            handled[0]["xray_trace_id"],
            "1-6a2b3c4d-cccccccccccccccccccccccc"
        );
        assert_eq!(
            handled[1]["xray_trace_id"],
            "1-6a2b3c4d-dddddddddddddddddddddddd"
        );
    }

    #[test]
    fn unknown_event_types_are_poison() {
        let body = valid_body("o").replace("\"type\":\"NotificationSent\"", "\"type\":\"Nope\"");
        assert!(matches!(
            parse(&record("m", &body)),
            Err(PoisonMessage::Contract(ContractError::UnknownType(_)))
        ));
    }
}
