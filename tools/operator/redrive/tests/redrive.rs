//! `redrive` against moto (which does not implement StartMessageMoveTask, so `move` takes
//! the receive/send/delete path), and `redrive republish` ([`republish`]).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "redrive/republish.rs"]
mod republish;

use std::process::Command;

use aws_sdk_sqs::{
    Client,
    types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry},
};
use redrive::{MoveOptions, MoveResult, SendOutcome, Sender, SqsSender};

async fn client() -> Client {
    Client::new(&testkit::sdk_config().await)
}

async fn create(client: &Client, name: &str, attrs: &[(QueueAttributeName, String)]) -> String {
    let mut request = client.create_queue().queue_name(name);
    for (k, v) in attrs {
        request = request.attributes(k.clone(), v);
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url")
}

async fn arn(client: &Client, url: &str) -> String {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .expect("attributes")[&QueueAttributeName::QueueArn]
        .clone()
}

/// A source queue and its DLQ (RedrivePolicy), the DLQ holding `n` messages `body-<i>`,
/// each with a `kind` message attribute.
async fn pair(client: &Client, n: usize) -> (String, String) {
    let base = testkit::unique("redrive");
    let dlq = create(client, &format!("{base}-dlq"), &[]).await;
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"3"}}"#,
        arn(client, &dlq).await
    );
    let source = create(
        client,
        &base,
        &[(QueueAttributeName::RedrivePolicy, policy)],
    )
    .await;
    let bodies: Vec<String> = (0..n).map(|i| format!("body-{i}")).collect();
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("e{i}"))
                    .message_body(body)
                    .message_attributes(
                        "kind",
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(format!("kind-of-{body}"))
                            .build()
                            .expect("attribute"),
                    )
                    .build()
                    .expect("entry")
            })
            .collect();
        let out = client
            .send_message_batch()
            .queue_url(&dlq)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("seed");
        assert!(out.failed.is_empty(), "seed failed: {:?}", out.failed);
    }
    (source, dlq)
}

/// Receives (and deletes) everything visible in a queue: body → `kind` attribute, counted.
async fn drain(client: &Client, url: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    loop {
        let messages = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let kind = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("kind"))
                .and_then(|v| v.string_value.clone())
                .unwrap_or_default();
            all.push((m.body.clone().unwrap_or_default(), kind));
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    all.sort();
    all
}

fn expected(range: impl Iterator<Item = usize>) -> Vec<(String, String)> {
    let mut all: Vec<_> = range
        .map(|i| (format!("body-{i}"), format!("kind-of-body-{i}")))
        .collect();
    all.sort();
    all
}

fn quick() -> MoveOptions {
    MoveOptions {
        wait_time_s: 0,
        ..MoveOptions::default()
    }
}

fn report(result: MoveResult) -> redrive::MoveReport {
    match result {
        MoveResult::Moved(report) => report,
        MoveResult::Task { .. } => panic!("moto has no StartMessageMoveTask: expected the loop"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn move_puts_every_message_back_in_the_source_queue_once() {
    let client = client().await;
    let (source, dlq) = pair(&client, 25).await;
    // By name, no --to: the source comes from the RedrivePolicy; StartMessageMoveTask is
    // tried first and moto's failure falls back to the loop.
    let name = redrive::queue_name(&dlq).to_owned();
    let report = report(
        redrive::redrive(&client, &name, None, &quick())
            .await
            .expect("move"),
    );
    assert_eq!(report.moved, 25);
    assert_eq!(report.target_url, source);
    assert!(
        report.failed.is_empty() && report.not_deleted.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        drain(&client, &source).await,
        expected(0..25),
        "bodies and attributes"
    );
    assert!(drain(&client, &dlq).await.is_empty(), "the DLQ is empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let client = client().await;
    let (source, dlq) = pair(&client, 25).await;
    let options = MoveOptions {
        dry_run: true,
        ..quick()
    };
    let report = report(
        redrive::redrive(&client, &dlq, None, &options)
            .await
            .expect("dry run"),
    );
    assert_eq!(report.moved, 0);
    let mut previewed: Vec<_> = report.would_move.iter().map(|p| p.body.clone()).collect();
    previewed.sort();
    let mut all: Vec<_> = (0..25).map(|i| format!("body-{i}")).collect();
    all.sort();
    assert_eq!(previewed, all);
    // Nothing sent, and every message is visible in the DLQ again right away.
    assert!(drain(&client, &source).await.is_empty());
    assert_eq!(drain(&client, &dlq).await, expected(0..25));
}

#[tokio::test(flavor = "multi_thread")]
async fn max_moves_at_most_n() {
    let client = client().await;
    let (source, dlq) = pair(&client, 25).await;
    let options = MoveOptions {
        max: Some(7),
        ..quick()
    };
    let report = report(
        redrive::redrive(&client, &dlq, None, &options)
            .await
            .expect("move"),
    );
    assert_eq!(report.moved, 7);
    let moved = drain(&client, &source).await;
    let left = drain(&client, &dlq).await;
    assert_eq!((moved.len(), left.len()), (7, 18));
    let mut all: Vec<_> = moved.into_iter().chain(left).collect();
    all.sort();
    assert_eq!(all, expected(0..25), "nothing lost or duplicated");
}

/// A target that rejects the messages whose body ends in an odd digit and really sends the
/// others.
struct RejectOdd(SqsSender);

impl Sender for RejectOdd {
    async fn send_batch(
        &self,
        target_url: &str,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> SendOutcome {
        let (odd, even): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| {
            e.message_body
                .chars()
                .last()
                .and_then(|c| c.to_digit(10))
                .is_some_and(|d| d % 2 == 1)
        });
        let mut outcome = if even.is_empty() {
            SendOutcome::default()
        } else {
            self.0.send_batch(target_url, even).await
        };
        outcome.failed.extend(
            odd.into_iter()
                .map(|e| (e.id, "rejected by the test".to_owned())),
        );
        outcome
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_send_failure_deletes_only_what_was_sent() {
    let client = client().await;
    let (source, dlq) = pair(&client, 25).await;
    let sender = RejectOdd(SqsSender(client.clone()));
    let report = redrive::move_messages(&client, &sender, &dlq, &source, &quick())
        .await
        .expect("move");
    assert_eq!((report.moved, report.failed.len()), (13, 12), "{report:?}");
    assert!(report.not_deleted.is_empty());
    let even = |i: &usize| i.is_multiple_of(2);
    assert_eq!(
        drain(&client, &source).await,
        expected((0..25).filter(even))
    );
    // The rejected ones are back in the DLQ, visible at once.
    assert_eq!(
        drain(&client, &dlq).await,
        expected((0..25).filter(|i| !even(i)))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_rejects_everything_leaves_the_dlq_intact() {
    let client = client().await;
    let (_source, dlq) = pair(&client, 12).await;
    // A target that no longer exists: SendMessageBatch fails as a whole.
    let gone = create(&client, &testkit::unique("redrive-gone"), &[]).await;
    client
        .delete_queue()
        .queue_url(&gone)
        .send()
        .await
        .expect("delete queue");
    let options = MoveOptions {
        no_move_task: true,
        ..quick()
    };
    let report = report(
        redrive::redrive(&client, &dlq, Some(gone.as_str()), &options)
            .await
            .expect("move"),
    );
    assert_eq!((report.moved, report.failed.len()), (0, 12), "{report:?}");
    assert_eq!(drain(&client, &dlq).await, expected(0..12));
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_depth_and_source() {
    let client = client().await;
    let (source, dlq) = pair(&client, 3).await;
    let infos = redrive::list(&client, std::slice::from_ref(&dlq))
        .await
        .expect("list");
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].url, dlq);
    assert_eq!(infos[0].messages, 3);
    assert_eq!(infos[0].sources, vec![source.clone()]);
    // Without --queue: every *-dlq queue, ours among them.
    let all = redrive::list(&client, &[]).await.expect("list all");
    assert!(
        all.iter()
            .any(|q| q.url == dlq && q.sources == vec![source.clone()])
    );
    assert!(all.iter().all(|q| q.name.ends_with("-dlq")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_honours_aws_endpoint_url() {
    let client = client().await;
    let (source, dlq) = pair(&client, 4).await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_redrive"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &testkit::moto().endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run redrive");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "redrive {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let name = redrive::queue_name(&dlq).to_owned();
    let listed = run(&["list", "--queue", &name]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&name))
        .expect("our DLQ listed");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields,
        vec![name.as_str(), "4", redrive::queue_name(&source)]
    );
    let dry = run(&["move", "--dlq", &name, "--dry-run"]);
    assert!(dry.contains("would move 4"), "{dry}");
    let moved = run(&["move", "--dlq", &name]);
    assert!(moved.contains("moved 4 message(s)"), "{moved}");
    assert_eq!(drain(&client, &source).await, expected(0..4));
}
