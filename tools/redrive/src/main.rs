//! `redrive`: list dead-letter queues, move their messages back. Honours the SDK's standard
//! configuration, including `AWS_ENDPOINT_URL` (the local stack's moto endpoint).

use clap::{Parser, Subcommand};
use redrive::{MoveOptions, MoveResult, QueueInfo};

#[derive(Debug, Parser)]
#[command(
    name = "redrive",
    about = "List dead-letter queues and move their messages back"
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
    }
    Ok(())
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
