//! `redrive republish` against moto: a service table with outbox items, a bus with a rule to a
//! queue (to see what was published), and a relay DLQ holding stream on-failure records.

use std::{collections::BTreeSet, process::Command};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kit::{
    events::{Envelope, Event, NotificationSent},
    outbox::Record,
    relay::{EventBridgePublisher, PublishError, Publisher},
};
use redrive::republish::{self, RepublishOptions, Window};
use uuid::Uuid;

struct Stack {
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
    table: String,
    bus: String,
    /// Receives every event published on the bus.
    published_url: String,
    dlq_url: String,
}

async fn stack() -> Stack {
    let config = testkit::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let table = testkit::unique("republish");
    testkit::create_service_table(&dynamo, &table).await;
    let bus = testkit::create_bus(&config).await;
    let (published_url, _) = testkit::queue_for_rule(
        &config,
        &bus,
        serde_json::json!({"source": ["shop.notify"]}),
    )
    .await;
    let dlq_url = sqs
        .create_queue()
        .queue_name(testkit::unique("relay-dlq"))
        .send()
        .await
        .expect("create dlq")
        .queue_url
        .expect("dlq url");
    Stack {
        events: aws_sdk_eventbridge::Client::new(&config),
        sqs,
        dynamo,
        table,
        bus,
        published_url,
        dlq_url,
    }
}

impl Stack {
    fn publisher(&self) -> EventBridgePublisher {
        EventBridgePublisher::new(self.events.clone(), &self.bus)
    }

    /// An outbox item for an event at `time`, as a service writes it.
    async fn outbox(&self, time: DateTime<Utc>) -> Envelope {
        let event = Event::NotificationSent(NotificationSent {
            notification_id: Uuid::new_v4().to_string(),
            customer_id: "c".into(),
            order_id: "o".into(),
            about: "OrderConfirmed".into(),
            channel: "record".into(),
            sent_at: time,
        });
        let envelope = Envelope::new("shop.notify", &event, "corr", None, time).unwrap();
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(kit::outbox::item(&envelope).unwrap()))
            .send()
            .await
            .expect("put outbox item");
        envelope
    }

    /// A relay DLQ message in the format Lambda sends (AWS Lambda developer guide, "Retain
    /// discarded records for a DynamoDB event source").
    async fn on_failure(&self, first: DateTime<Utc>, last: DateTime<Utc>) {
        let seconds = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = serde_json::json!({
            "requestContext": {
                "requestId": Uuid::new_v4().to_string(),
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:shop-dev-notify-relay",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 11,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": seconds(Utc::now()),
            "DDBStreamBatchInfo": {
                "shardId": "shardId-00000001573689847184-864758bb",
                "startSequenceNumber": "800000000003126276362",
                "endSequenceNumber": "800000000003126276399",
                "approximateArrivalOfFirstRecord": seconds(first),
                "approximateArrivalOfLastRecord": seconds(last),
                "batchSize": 2,
                "streamArn": format!(
                    "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-01-01T00:00:00.000",
                    self.table
                ),
            },
        });
        self.sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("send on-failure record");
    }

    /// The envelopes published on the bus so far (received and deleted).
    async fn published(&self) -> Vec<Envelope> {
        let mut all = Vec::new();
        loop {
            let messages = self
                .sqs
                .receive_message()
                .queue_url(&self.published_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                return all;
            }
            for m in messages {
                let body: serde_json::Value =
                    serde_json::from_str(m.body().unwrap_or_default()).unwrap();
                all.push(serde_json::from_value(body["detail"].clone()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.published_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// Messages in the DLQ, visible ones and those in flight.
    async fn dlq_depth(&self) -> (i64, i64) {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        let n = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1)
        };
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

fn ids(envelopes: &[Envelope]) -> BTreeSet<Uuid> {
    envelopes.iter().map(|e| e.id).collect()
}

/// Two hours ago, to the second (like the arrival times of an on-failure record).
fn earlier() -> DateTime<Utc> {
    (Utc::now() - TimeDelta::hours(2)).trunc_subsecs(0)
}

fn options() -> RepublishOptions {
    RepublishOptions {
        visibility_timeout_s: 30,
        ..RepublishOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_of_a_skipped_batch_are_published_again_with_their_envelope_and_the_record_deleted()
 {
    let stack = stack().await;
    let t0 = earlier();
    let before = stack.outbox(t0 - TimeDelta::minutes(10)).await;
    let first = stack.outbox(t0 + TimeDelta::milliseconds(300)).await;
    let second = stack.outbox(t0 + TimeDelta::seconds(2)).await;
    let after = stack.outbox(t0 + TimeDelta::minutes(10)).await;
    stack
        .dynamo
        .put_item()
        .table_name(&stack.table)
        .item("pk", AttributeValue::S("ORDER#1".into()))
        .item("sk", AttributeValue::S("ORDER".into()))
        .send()
        .await
        .expect("put another item");
    stack.on_failure(t0, t0 + TimeDelta::seconds(2)).await;

    let report = republish::republish_dlq(
        &stack.sqs,
        &stack.dynamo,
        &stack.publisher(),
        &stack.dlq_url,
        &options(),
    )
    .await
    .expect("republish");

    assert_eq!(report.messages.len(), 1, "{report:?}");
    assert_eq!(report.messages[0].kept, None, "{report:?}");
    assert_eq!(report.published, 2);
    let published = stack.published().await;
    assert_eq!(ids(&published), ids(&[first.clone(), second.clone()]));
    assert!(!ids(&published).contains(&before.id) && !ids(&published).contains(&after.id));
    // The original envelopes, unchanged: same id, time, correlation and data.
    let mut published = published;
    published.sort_by_key(|e| e.time);
    assert_eq!(published, [first, second]);
    assert_eq!(stack.dlq_depth().await, (0, 0));
}

/// Accepts everything but one event, which EventBridge "throttles" every time.
struct RejectOne<P> {
    inner: P,
    reject: Uuid,
}

impl<P: Publisher> Publisher for RejectOne<P> {
    async fn publish(&self, batch: &[Record]) -> Result<Vec<Option<String>>, PublishError> {
        let accepted: Vec<Record> = batch
            .iter()
            .filter(|r| r.envelope.id != self.reject)
            .cloned()
            .collect();
        let mut results = self.inner.publish(&accepted).await?.into_iter();
        Ok(batch
            .iter()
            .map(|r| {
                if r.envelope.id == self.reject {
                    Some("ThrottlingException".to_owned())
                } else {
                    results.next().flatten()
                }
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_stays_in_the_dlq_until_every_event_of_its_window_is_published() {
    let stack = stack().await;
    let t0 = earlier();
    let first = stack.outbox(t0).await;
    let second = stack.outbox(t0 + TimeDelta::seconds(1)).await;
    stack.on_failure(t0, t0 + TimeDelta::seconds(1)).await;

    let flaky = RejectOne {
        inner: stack.publisher(),
        reject: second.id,
    };
    let report = republish::republish_dlq(
        &stack.sqs,
        &stack.dynamo,
        &flaky,
        &stack.dlq_url,
        &options(),
    )
    .await
    .expect("republish");
    assert!(
        report.messages[0]
            .kept
            .as_deref()
            .is_some_and(|k| k.contains(&second.id.to_string())),
        "{report:?}"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        ids(&stack.published().await),
        ids(std::slice::from_ref(&first))
    );
    // Kept, and visible again at once for the next run.
    assert_eq!(stack.dlq_depth().await, (1, 0));

    let report = republish::republish_dlq(
        &stack.sqs,
        &stack.dynamo,
        &stack.publisher(),
        &stack.dlq_url,
        &options(),
    )
    .await
    .expect("republish again");
    assert_eq!(report.messages[0].kept, None, "{report:?}");
    // Both again: `first` twice in all, which its consumers ignore (same event id).
    assert_eq!(ids(&stack.published().await), ids(&[first, second]));
    assert_eq!(stack.dlq_depth().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_publishes_nothing_and_keeps_the_record() {
    let stack = stack().await;
    let t0 = earlier();
    let event = stack.outbox(t0).await;
    stack.on_failure(t0, t0).await;
    let report = republish::republish_dlq(
        &stack.sqs,
        &stack.dynamo,
        &stack.publisher(),
        &stack.dlq_url,
        &RepublishOptions {
            dry_run: true,
            ..options()
        },
    )
    .await
    .expect("dry run");
    assert_eq!(report.messages[0].events, [event.id]);
    assert_eq!(report.published, 0);
    assert!(stack.published().await.is_empty());
    assert_eq!(stack.dlq_depth().await, (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_window_republishes_every_outbox_event_in_it() {
    let stack = stack().await;
    let t0 = earlier();
    let inside = stack.outbox(t0).await;
    let _outside = stack.outbox(t0 + TimeDelta::hours(1)).await;
    let window = Window {
        since: t0 - TimeDelta::minutes(1),
        until: t0 + TimeDelta::minutes(1),
    };
    let (events, failed) = republish::republish_window(
        &stack.dynamo,
        &stack.publisher(),
        &stack.table,
        window,
        false,
    )
    .await
    .expect("republish window");
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(ids(&events), ids(std::slice::from_ref(&inside)));
    assert_eq!(stack.published().await, [inside]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_republish_command_empties_a_relay_dlq() {
    let stack = stack().await;
    let t0 = earlier();
    let event = stack.outbox(t0).await;
    stack.on_failure(t0, t0).await;
    let dlq = redrive::queue_name(&stack.dlq_url).to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args(["republish", "--dlq", &dlq, "--bus", &stack.bus])
        .env("AWS_ENDPOINT_URL", &testkit::moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run redrive");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("republished 1 event(s), message deleted"),
        "{stdout}"
    );
    assert_eq!(stack.published().await, [event]);
    assert_eq!(stack.dlq_depth().await, (0, 0));
}
