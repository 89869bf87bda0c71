//! `make chaos`: a chaos run of the whole application on the local stack, then its table.
//! Exits 1 when any guarantee broke (see `e2e::chaos`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use clap::Parser;

/// Runs ORDERS orders through the local stack while FAULTS of the functions' AWS calls fail
/// and a function process is killed every KILL_EVERY, then checks every guarantee.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    orders: usize,
    /// Share (0..1) of the functions' AWS calls that fail.
    #[arg(long, default_value_t = 0.1)]
    faults: f64,
    /// Kill a random function process this often (e.g. 1.5s; 0 for never).
    #[arg(long, default_value = "1.5s", value_parser = local_stack::schedule::parse_duration)]
    kill_every: Duration,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The saga timeout of the run (SagaTimeoutMinutes).
    #[arg(long, default_value_t = 1)]
    saga_timeout_minutes: u32,
    /// Orders placed at the same time.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// An already running moto (a new one is started otherwise).
    #[arg(long)]
    aws_endpoint: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = local_stack::stack::workspace_root(&std::env::current_dir()?)?;
    let mut plan = e2e::chaos::Plan::new(args.orders, args.faults, args.seed);
    plan.kill_every = (!args.kill_every.is_zero()).then_some(args.kill_every);
    plan.saga_timeout_minutes = args.saga_timeout_minutes;
    plan.concurrency = args.concurrency;
    plan.aws_endpoint = args.aws_endpoint;
    let report = e2e::chaos::run(&root, &plan).await?;
    println!("{report}");
    let problems = report.problems();
    if problems.is_empty() {
        println!("chaos: every guarantee held");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("chaos: {p}");
        }
        std::process::exit(1)
    }
}
