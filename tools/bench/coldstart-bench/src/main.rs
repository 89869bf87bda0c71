//! coldstart-bench: measures init, first and warm invocation, peak RSS and zip size of every
//! function (see the library docs); prints a Markdown table and writes it with a JSON report.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Cold-start bench of the function binaries against moto (MOTO_ENDPOINT, or one started from
/// ./.venv). Build the binaries first: the release build of every service, the outbox relay and
/// the baselines, as make bench does.
#[derive(Debug, Parser)]
struct Args {
    /// Fresh processes per function.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Cargo profile whose binaries to run (directory under the target dir).
    #[arg(long, default_value = "release")]
    profile: String,
    /// Where to write bench.md and bench.json (default: <target>/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the Python comparison.
    #[arg(long)]
    no_python: bool,
    /// Only functions whose names contain one of these (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Extra environment variable for every function, KEY=VALUE (repeatable; for experiments).
    #[arg(long = "env", value_parser = key_value)]
    extra_env: Vec<(String, String)>,
    /// Fail when a function breaks its budget in this file (zip size, init over its baseline's;
    /// CI passes tools/bench/coldstart-bench/budgets.yaml).
    #[arg(long)]
    budgets: Option<PathBuf>,
    /// Reach moto through a TLS endpoint (tools/bench/tls_proxy.py, its CA given to the functions
    /// as AWS_CA_BUNDLE), so the first invocation pays the handshake a new sandbox pays.
    #[arg(long)]
    tls: bool,
    /// The functions' AWS_LAMBDA_INITIALIZATION_TYPE (provisioned-concurrency: kit opens their
    /// connections during init).
    #[arg(long, default_value = "on-demand", value_parser = ["on-demand", "provisioned-concurrency"])]
    initialization_type: String,
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = coldstart_bench::world::repo_root();
    let target = coldstart_bench::world::target_dir(&root);
    let out = args.out.unwrap_or_else(|| target.join("bench"));
    let options = coldstart_bench::Options {
        runs: args.runs.max(1),
        bin_dir: target.join(&args.profile),
        profile: args.profile,
        python: !args.no_python,
        only: args.only,
        log_dir: out.join("logs"),
        extra_env: args.extra_env,
        tls: args.tls,
        initialization_type: args.initialization_type,
    };
    let report = coldstart_bench::run(&options).await?;
    let markdown = report.markdown();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("bench.md"), &markdown)
        .with_context(|| format!("writing {}", out.join("bench.md").display()))?;
    std::fs::write(
        out.join("bench.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    print(&markdown);
    eprintln!(
        "wrote {0}/bench.md and {0}/bench.json (function logs in {0}/logs)",
        out.display()
    );
    let errors = report.errors();
    anyhow::ensure!(errors.is_empty(), "{} run(s) failed", errors.len());
    if let Some(path) = args.budgets {
        let breaches = coldstart_bench::budgets::Budgets::load(&path)?.breaches(&report);
        for breach in &breaches {
            eprintln!("over budget: {breach}");
        }
        anyhow::ensure!(
            breaches.is_empty(),
            "{} budget(s) of {} broken",
            breaches.len(),
            path.display()
        );
        eprintln!("every function within the budgets of {}", path.display());
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print(markdown: &str) {
    println!("{markdown}");
}
