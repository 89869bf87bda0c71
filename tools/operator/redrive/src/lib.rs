//! Operator tooling for dead-letter queues: list them (depth and source queue), move their
//! messages back, and republish what a relay gave up on ([`republish`]).
//!
//! Moving tries SQS `StartMessageMoveTask` first (asynchronous, done by SQS) and falls back,
//! when the endpoint does not support it (moto, for one) or when the caller needs something
//! the task cannot do (`--dry-run`, `--max`), to a receive → send → delete loop in batches of
//! at most ten that never loses a message: a message is deleted from the DLQ only after the
//! target accepted it, and a message the target rejected is made visible again in the DLQ
//! when the run ends.

pub mod republish;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
};

use anyhow::{Context, bail};
use aws_sdk_sqs::{
    Client,
    config::retry::RetryConfig,
    error::ProvideErrorMetadata,
    types::{
        ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
        MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
    },
};

/// SQS's limit on the entries of one batch call.
pub const BATCH: usize = 10;

/// A queue as `redrive list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
    /// `ApproximateNumberOfMessages`.
    pub messages: i64,
    /// URLs of the queues whose RedrivePolicy names this queue as their dead-letter target.
    pub sources: Vec<String>,
}

/// The last path segment of a queue URL (or the last field of an ARN): its name.
pub fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

/// A queue URL from a URL, an ARN or a name.
pub async fn resolve_url(client: &Client, queue: &str) -> anyhow::Result<String> {
    if queue.starts_with("http://") || queue.starts_with("https://") {
        return Ok(queue.to_owned());
    }
    let name = queue_name(queue);
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("queue {name} not found"))?
        .queue_url
        .with_context(|| format!("no URL for queue {name}"))
}

async fn all_queue_urls(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_queues()
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .context("ListQueues")?;
        urls.extend(page.queue_urls.unwrap_or_default());
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(urls),
        }
    }
}

async fn attributes(
    client: &Client,
    url: &str,
) -> anyhow::Result<HashMap<QueueAttributeName, String>> {
    Ok(client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .with_context(|| format!("GetQueueAttributes {url}"))?
        .attributes
        .unwrap_or_default())
}

/// The dead-letter target ARN of a RedrivePolicy attribute.
pub fn dead_letter_target(redrive_policy: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(redrive_policy)
        .ok()?
        .get("deadLetterTargetArn")?
        .as_str()
        .map(str::to_owned)
}

/// Every queue's URL mapped to the ARN of its dead-letter target, for the queues that have
/// one. Queues that vanish while we look are skipped.
async fn redrive_targets(client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let mut targets = Vec::new();
    for url in all_queue_urls(client).await? {
        let Ok(attrs) = attributes(client, &url).await else {
            continue;
        };
        if let Some(dlq) = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| dead_letter_target(p))
        {
            targets.push((url, dlq));
        }
    }
    Ok(targets)
}

/// The queues whose name ends in `-dlq` (or `-dlq.fifo`), or those given, with their depth
/// and source queues.
pub async fn list(client: &Client, queues: &[String]) -> anyhow::Result<Vec<QueueInfo>> {
    let explicit = !queues.is_empty();
    let selected = if queues.is_empty() {
        all_queue_urls(client)
            .await?
            .into_iter()
            .filter(|url| {
                let name = queue_name(url);
                name.ends_with("-dlq") || name.ends_with("-dlq.fifo")
            })
            .collect()
    } else {
        let mut urls = Vec::new();
        for queue in queues {
            urls.push(resolve_url(client, queue).await?);
        }
        urls
    };
    let targets = redrive_targets(client).await?;
    let mut infos = Vec::new();
    for url in selected {
        let attrs = match attributes(client, &url).await {
            Ok(attrs) => attrs,
            // A queue deleted since ListQueues is no longer worth listing.
            Err(_) if !explicit => continue,
            Err(error) => return Err(error),
        };
        let arn = attrs
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        let messages = attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let sources = targets
            .iter()
            .filter(|(_, dlq)| *dlq == arn)
            .map(|(source, _)| source.clone())
            .collect();
        infos.push(QueueInfo {
            name: queue_name(&url).to_owned(),
            url,
            arn,
            messages,
            sources,
        });
    }
    Ok(infos)
}

/// What one SendMessageBatch achieved, by entry id. An entry in neither list counts as not
/// sent (it stays in the DLQ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    pub sent: Vec<String>,
    /// Entry id and reason.
    pub failed: Vec<(String, String)>,
}

/// Sends a batch of at most ten messages to a queue. A trait so tests can make a target
/// reject some messages.
pub trait Sender {
    fn send_batch(
        &self,
        target_url: &str,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> impl Future<Output = SendOutcome> + Send;
}

/// The real sender: SendMessageBatch.
#[derive(Debug, Clone)]
pub struct SqsSender(pub Client);

impl Sender for SqsSender {
    async fn send_batch(
        &self,
        target_url: &str,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> SendOutcome {
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        match self
            .0
            .send_message_batch()
            .queue_url(target_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => SendOutcome {
                sent: out.successful.into_iter().map(|s| s.id).collect(),
                failed: out
                    .failed
                    .into_iter()
                    .map(|f| {
                        let reason = format!("{}: {}", f.code, f.message.unwrap_or_default());
                        (f.id, reason)
                    })
                    .collect(),
            },
            // The whole call failed: nothing counts as sent (an ambiguous network failure
            // may still have delivered them; we prefer a possible duplicate to a loss).
            Err(error) => {
                let reason = format!("SendMessageBatch: {}", error_text(&error));
                SendOutcome {
                    sent: Vec::new(),
                    failed: ids.into_iter().map(|id| (id, reason.clone())).collect(),
                }
            }
        }
    }
}

fn error_text<E: ProvideErrorMetadata + std::fmt::Display>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => error.to_string(),
    }
}

/// How `move` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveOptions {
    /// Report what would move; change nothing.
    pub dry_run: bool,
    /// Handle at most this many messages.
    pub max: Option<usize>,
    /// How long received messages stay invisible in the DLQ while we handle them (and the
    /// rejected ones until the run ends).
    pub visibility_timeout_s: i32,
    /// Long-poll wait of each receive; the run ends at the first empty receive.
    pub wait_time_s: i32,
    /// Skip StartMessageMoveTask and always use the receive/send/delete loop.
    pub no_move_task: bool,
}

impl Default for MoveOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            max: None,
            visibility_timeout_s: 60,
            wait_time_s: 1,
            no_move_task: false,
        }
    }
}

/// A message the run looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub message_id: String,
    pub body: String,
}

/// What the receive/send/delete loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveReport {
    pub dlq_url: String,
    pub target_url: String,
    /// Sent to the target and deleted from the DLQ.
    pub moved: usize,
    /// `--dry-run`: what would be moved.
    pub would_move: Vec<Preview>,
    /// Rejected by the target: still in the DLQ (message id, reason).
    pub failed: Vec<(String, String)>,
    /// Sent to the target but not deleted from the DLQ (message id, reason): they will be
    /// in both queues.
    pub not_deleted: Vec<(String, String)>,
}

/// What `move` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveResult {
    /// SQS accepted a StartMessageMoveTask; it moves the messages asynchronously.
    Task {
        task_handle: String,
        dlq_arn: String,
    },
    /// The receive/send/delete loop ran.
    Moved(MoveReport),
}

/// Whether a StartMessageMoveTask error means the endpoint or the queue cannot do it (so the
/// manual loop should): moto answers with an HTML 500 without an error code.
pub fn move_task_unsupported(code: Option<&str>, status: Option<u16>) -> bool {
    match code {
        Some(code) => matches!(
            code,
            "UnsupportedOperation"
                | "AWS.SimpleQueueService.UnsupportedOperation"
                | "InvalidAction"
                | "NotImplemented"
                | "UnknownOperationException"
        ),
        None => matches!(status, Some(404 | 500 | 501)),
    }
}

/// `redrive move`: moves the messages of `dlq` to `to`, or to the DLQ's source queue.
pub async fn redrive(
    client: &Client,
    dlq: &str,
    to: Option<&str>,
    options: &MoveOptions,
) -> anyhow::Result<MoveResult> {
    let dlq_url = resolve_url(client, dlq).await?;
    let dlq_attrs = attributes(client, &dlq_url).await?;
    let dlq_arn = dlq_attrs
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .with_context(|| format!("no QueueArn for {dlq_url}"))?;
    let target_url = match to {
        Some(to) => Some(resolve_url(client, to).await?),
        None => {
            let sources: Vec<String> = redrive_targets(client)
                .await?
                .into_iter()
                .filter(|(_, target)| *target == dlq_arn)
                .map(|(source, _)| source)
                .collect();
            match sources.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        }
    };

    if !options.dry_run && options.max.is_none() && !options.no_move_task {
        let mut request = client.start_message_move_task().source_arn(&dlq_arn);
        // Without --to, SQS returns each message to the queue it came from.
        if let (Some(target), Some(_)) = (&target_url, to) {
            let target_arn = attributes(client, target)
                .await?
                .get(&QueueAttributeName::QueueArn)
                .cloned()
                .with_context(|| format!("no QueueArn for {target}"))?;
            request = request.destination_arn(target_arn);
        }
        let answer = request
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await;
        match answer {
            Ok(out) => {
                return Ok(MoveResult::Task {
                    task_handle: out.task_handle.unwrap_or_default(),
                    dlq_arn,
                });
            }
            Err(error) => {
                let status = error.raw_response().map(|r| r.status().as_u16());
                if !move_task_unsupported(error.code(), status) {
                    return Err(anyhow::anyhow!(
                        "StartMessageMoveTask: {}",
                        error_text(&error)
                    ));
                }
            }
        }
    }

    let Some(target_url) = target_url else {
        bail!(
            "cannot tell the source queue of {dlq_url} (no single queue names it in its \
             RedrivePolicy): pass --to"
        );
    };
    let report = move_messages(
        client,
        &SqsSender(client.clone()),
        &dlq_url,
        &target_url,
        options,
    )
    .await?;
    Ok(MoveResult::Moved(report))
}

fn entry(
    index: usize,
    message: &Message,
    fifo_target: bool,
) -> anyhow::Result<SendMessageBatchRequestEntry> {
    let system = message.attributes.as_ref();
    let system_attr = |name: MessageSystemAttributeName| system.and_then(|a| a.get(&name)).cloned();
    let mut builder = SendMessageBatchRequestEntry::builder()
        .id(format!("m{index}"))
        .message_body(message.body.clone().unwrap_or_default())
        .set_message_attributes(message.message_attributes.clone());
    if fifo_target {
        builder = builder
            .message_group_id(
                system_attr(MessageSystemAttributeName::MessageGroupId)
                    .unwrap_or_else(|| "redrive".to_owned()),
            )
            .message_deduplication_id(
                system_attr(MessageSystemAttributeName::MessageDeduplicationId)
                    .or_else(|| message.message_id.clone())
                    .unwrap_or_default(),
            );
    }
    builder.build().context("SendMessageBatch entry")
}

/// The receive → send → delete loop, in batches of at most ten: deletes from the DLQ only
/// the messages the target accepted; the rejected ones stay invisible until the run ends
/// (so they are not received again) and are then made visible again.
pub async fn move_messages<S: Sender + Sync>(
    client: &Client,
    sender: &S,
    dlq_url: &str,
    target_url: &str,
    options: &MoveOptions,
) -> anyhow::Result<MoveReport> {
    let mut report = MoveReport {
        dlq_url: dlq_url.to_owned(),
        target_url: target_url.to_owned(),
        ..MoveReport::default()
    };
    let fifo_target = target_url.ends_with(".fifo");
    // Messages handled in this run, so a re-delivered one is never sent twice.
    let mut seen: HashSet<String> = HashSet::new();
    // Message id → latest receipt handle, of the messages to make visible again at the end.
    let mut release: HashMap<String, String> = HashMap::new();
    let mut handled = 0usize;
    let result = async {
        loop {
            let room = options.max.map_or(BATCH, |max| BATCH.min(max - handled));
            if room == 0 {
                return Ok(());
            }
            let received = client
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(i32::try_from(room).unwrap_or(10))
                .visibility_timeout(options.visibility_timeout_s)
                .wait_time_seconds(options.wait_time_s)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .with_context(|| format!("ReceiveMessage {dlq_url}"))?
                .messages
                .unwrap_or_default();
            if received.is_empty() {
                return Ok(());
            }
            let mut fresh = Vec::new();
            for message in received {
                let id = message.message_id.clone().unwrap_or_default();
                let handle = message.receipt_handle.clone().unwrap_or_default();
                if seen.insert(id.clone()) {
                    fresh.push(message);
                } else {
                    release.insert(id, handle);
                }
            }
            if fresh.is_empty() {
                // Only messages we already handled came back: nothing new is left.
                return Ok(());
            }
            handled += fresh.len();
            if options.dry_run {
                for message in fresh {
                    let id = message.message_id.unwrap_or_default();
                    report.would_move.push(Preview {
                        message_id: id.clone(),
                        body: message.body.unwrap_or_default(),
                    });
                    release.insert(id, message.receipt_handle.unwrap_or_default());
                }
                continue;
            }
            let entries = fresh
                .iter()
                .enumerate()
                .map(|(i, m)| entry(i, m, fifo_target))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let outcome = sender.send_batch(target_url, entries).await;
            let sent: HashSet<&str> = outcome.sent.iter().map(String::as_str).collect();
            let reasons: HashMap<&str, &str> = outcome
                .failed
                .iter()
                .map(|(id, reason)| (id.as_str(), reason.as_str()))
                .collect();
            let mut deletes = Vec::new();
            for (i, message) in fresh.iter().enumerate() {
                let entry_id = format!("m{i}");
                let id = message.message_id.clone().unwrap_or_default();
                let handle = message.receipt_handle.clone().unwrap_or_default();
                if sent.contains(entry_id.as_str()) {
                    deletes.push((entry_id, id, handle));
                } else {
                    let reason = reasons
                        .get(entry_id.as_str())
                        .map_or("not confirmed by the target", |r| r);
                    report.failed.push((id.clone(), reason.to_owned()));
                    release.insert(id, handle);
                }
            }
            if deletes.is_empty() {
                continue;
            }
            let request = deletes
                .iter()
                .map(|(entry_id, _, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(entry_id)
                        .receipt_handle(handle)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .context("DeleteMessageBatch entry")?;
            match client
                .delete_message_batch()
                .queue_url(dlq_url)
                .set_entries(Some(request))
                .send()
                .await
            {
                Ok(out) => {
                    report.moved += out.successful.len();
                    for failed in out.failed {
                        let id = deletes
                            .iter()
                            .find(|(entry_id, _, _)| *entry_id == failed.id)
                            .map(|(_, id, _)| id.clone())
                            .unwrap_or(failed.id);
                        report.not_deleted.push((id, failed.code));
                    }
                }
                Err(error) => {
                    let reason = format!("DeleteMessageBatch: {}", error_text(&error));
                    for (_, id, _) in deletes {
                        report.not_deleted.push((id, reason.clone()));
                    }
                }
            }
        }
    }
    .await;
    make_visible(client, dlq_url, release).await;
    result.map(|()| report)
}

/// Best effort: makes the given messages visible in the queue again now (else they come
/// back when their visibility timeout ends).
async fn make_visible(client: &Client, queue_url: &str, release: HashMap<String, String>) {
    let handles: Vec<String> = release.into_values().collect();
    for chunk in handles.chunks(BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("v{i}"))
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        let _ignored = client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls_and_arns() {
        assert_eq!(
            queue_name("http://localhost:5000/123456789012/orders-dlq"),
            "orders-dlq"
        );
        assert_eq!(
            queue_name("arn:aws:sqs:us-east-1:123456789012:orders-dlq"),
            "orders-dlq"
        );
        assert_eq!(queue_name("orders-dlq"), "orders-dlq");
    }

    #[test]
    fn redrive_policy_target() {
        assert_eq!(
            dead_letter_target(r#"{"deadLetterTargetArn":"arn:x:q-dlq","maxReceiveCount":5}"#),
            Some("arn:x:q-dlq".to_owned())
        );
        assert_eq!(dead_letter_target("not json"), None);
    }

    #[test]
    fn unsupported_move_task_is_recognised() {
        assert!(move_task_unsupported(None, Some(500)));
        assert!(move_task_unsupported(
            Some("UnsupportedOperation"),
            Some(400)
        ));
        assert!(!move_task_unsupported(Some("AccessDenied"), Some(403)));
        assert!(!move_task_unsupported(None, Some(403)));
    }
}
