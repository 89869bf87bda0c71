//! `redrive`: list dead-letter queues, move their messages back, republish the outbox events
//! a relay gave up on. Honours the SDK's standard configuration, including `AWS_ENDPOINT_URL`
//! (the local stack's moto endpoint).

use chrono::{DateTime, TimeDelta, Utc};
use clap::{Parser, Subcommand};
use kit::relay::EventBridgePublisher;
use redrive::{
    MoveOptions, MoveResult, QueueInfo,
    republish::{RepublishOptions, RepublishReport, Window},
};

#[derive(Debug, Parser)]
#[command(
    name = "redrive",
    about = "List dead-letter queues, move their messages back, republish skipped outbox events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every queue whose name ends in -dlq (or those given), its depth and source queue.
    List {
        /// A queue URL, ARN or name (repeatable); default: every *-dlq queue.
        #[arg(long = "queue")]
        queues: Vec<String>,
    },
    /// Moves the messages of a DLQ back to its source queue (or --to).
    Move {
        /// The DLQ: URL, ARN or name.
        #[arg(long)]
        dlq: String,
        /// The target queue (URL, ARN or name); default: the queue whose RedrivePolicy names
        /// the DLQ.
        #[arg(long)]
        to: Option<String>,
        /// Print what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Move at most N messages.
        #[arg(long)]
        max: Option<usize>,
        /// Skip StartMessageMoveTask; always receive/send/delete.
        #[arg(long)]
        no_move_task: bool,
    },
    /// Publishes again the outbox events a relay gave up on: for each on-failure record in a
    /// relay DLQ (--dlq), the outbox items of its time window; or every outbox item of a table
    /// in --since..--until. Same envelopes, same event ids: consumers skip what they handled.
    Republish {
        /// The event bus (name or ARN), e.g. shop-dev.
        #[arg(long)]
        bus: String,
        /// A relay DLQ (URL, ARN or name) holding stream on-failure records.
        #[arg(long, conflicts_with_all = ["since", "until"], required_unless_present = "since")]
        dlq: Option<String>,
        /// The table to read outbox items from; default: the table of the record's stream ARN.
        /// Required with --since.
        #[arg(long, required_unless_present = "dlq")]
        table: Option<String>,
        /// Window start (RFC 3339), instead of --dlq.
        #[arg(long, requires_all = ["until", "table"])]
        since: Option<DateTime<Utc>>,
        /// Window end (RFC 3339).
        #[arg(long, requires = "since")]
        until: Option<DateTime<Utc>>,
        /// Seconds each DLQ record's window is widened on both sides.
        #[arg(long, default_value_t = 60)]
        slack_seconds: i64,
        /// Print what would be published; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Handle at most N DLQ messages.
        #[arg(long)]
        max: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_sqs::Client::new(&config);
    match cli.command {
        Command::List { queues } => print_list(&redrive::list(&client, &queues).await?),
        Command::Move {
            dlq,
            to,
            dry_run,
            max,
            no_move_task,
        } => {
            let options = MoveOptions {
                dry_run,
                max,
                no_move_task,
                ..MoveOptions::default()
            };
            let result = redrive::redrive(&client, &dlq, to.as_deref(), &options).await?;
            print_move(&result);
            if let MoveResult::Moved(report) = &result
                && (!report.failed.is_empty() || !report.not_deleted.is_empty())
            {
                anyhow::bail!(
                    "{} message(s) not moved, {} sent but not deleted",
                    report.failed.len(),
                    report.not_deleted.len()
                );
            }
        }
        Command::Republish {
            bus,
            dlq,
            table,
            since,
            until,
            slack_seconds,
            dry_run,
            max,
        } => {
            let dynamo = aws_sdk_dynamodb::Client::new(&config);
            let publisher =
                EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), bus);
            match (dlq, since, until, table) {
                (Some(dlq), _, _, table) => {
                    let dlq_url = redrive::resolve_url(&client, &dlq).await?;
                    let options = RepublishOptions {
                        slack: TimeDelta::seconds(slack_seconds),
                        table,
                        dry_run,
                        max,
                        ..RepublishOptions::default()
                    };
                    let report = redrive::republish::republish_dlq(
                        &client, &dynamo, &publisher, &dlq_url, &options,
                    )
                    .await?;
                    print_republish(&report, dry_run);
                    let kept = report.messages.iter().filter(|m| m.kept.is_some()).count();
                    if kept > 0 && !dry_run {
                        anyhow::bail!(
                            "{kept} DLQ message(s) kept: run again once the cause is fixed"
                        );
                    }
                }
                (None, Some(since), Some(until), Some(table)) => {
                    let window = Window { since, until };
                    let (events, failed) = redrive::republish::republish_window(
                        &dynamo, &publisher, &table, window, dry_run,
                    )
                    .await?;
                    print_window(&events, &failed, dry_run);
                    if !failed.is_empty() {
                        anyhow::bail!("{} event(s) not published", failed.len());
                    }
                }
                _ => anyhow::bail!("republish needs --dlq, or --table with --since and --until"),
            }
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_republish(report: &RepublishReport, dry_run: bool) {
    for message in &report.messages {
        let window = message
            .window
            .map(|w| format!("{}..{}", w.since.to_rfc3339(), w.until.to_rfc3339()))
            .unwrap_or_else(|| "-".to_owned());
        let table = message.table.as_deref().unwrap_or("-");
        let verb = if dry_run {
            "would republish"
        } else {
            "republished"
        };
        match &message.kept {
            None => println!(
                "{}: {table} {window}: {verb} {} event(s){}",
                message.message_id,
                message.events.len(),
                if dry_run { "" } else { ", message deleted" }
            ),
            Some(reason) => println!("{}: kept in the DLQ: {reason}", message.message_id),
        }
        if dry_run {
            for id in &message.events {
                println!("  {id}");
            }
        }
    }
    println!(
        "{} DLQ message(s), {} event(s) published, {} not accepted",
        report.messages.len(),
        report.published,
        report.failed.len()
    );
}

#[allow(clippy::print_stdout)]
fn print_window(events: &[kit::events::Envelope], failed: &[(uuid::Uuid, String)], dry_run: bool) {
    for envelope in events {
        println!(
            "{} {} {} {}",
            envelope.time.to_rfc3339(),
            envelope.id,
            envelope.source,
            envelope.event_type
        );
    }
    for (id, reason) in failed {
        println!("not published: {id}: {reason}");
    }
    let verb = if dry_run {
        "would publish"
    } else {
        "published"
    };
    println!("{verb} {} event(s)", events.len() - failed.len());
}

#[allow(clippy::print_stdout)]
fn print_list(queues: &[QueueInfo]) {
    println!("{:<40} {:>10}  SOURCE", "QUEUE", "MESSAGES");
    for queue in queues {
        let sources = if queue.sources.is_empty() {
            "-".to_owned()
        } else {
            queue
                .sources
                .iter()
                .map(|s| redrive::queue_name(s))
                .collect::<Vec<_>>()
                .join(",")
        };
        println!("{:<40} {:>10}  {sources}", queue.name, queue.messages);
    }
}

#[allow(clippy::print_stdout)]
fn print_move(result: &MoveResult) {
    match result {
        MoveResult::Task {
            task_handle,
            dlq_arn,
        } => {
            println!("started SQS message move task {task_handle} for {dlq_arn}");
            println!("follow it with: aws sqs list-message-move-tasks --source-arn {dlq_arn}");
        }
        MoveResult::Moved(report) => {
            let dlq = redrive::queue_name(&report.dlq_url);
            let target = redrive::queue_name(&report.target_url);
            for preview in &report.would_move {
                println!("would move {} {}", preview.message_id, preview.body);
            }
            if report.would_move.is_empty() {
                println!("moved {} message(s) from {dlq} to {target}", report.moved);
            } else {
                println!(
                    "dry run: would move {} message(s) from {dlq} to {target}",
                    report.would_move.len()
                );
            }
            for (id, reason) in &report.failed {
                println!("not moved (still in {dlq}): {id}: {reason}");
            }
            for (id, reason) in &report.not_deleted {
                println!("sent to {target} but not deleted from {dlq}: {id}: {reason}");
            }
        }
    }
}
