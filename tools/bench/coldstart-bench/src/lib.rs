//! Cold-start bench: every function binary of the services and two hello-world baselines (and a
//! Python equivalent of `orders-http`) are started `runs` times under a minimal Lambda Runtime
//! API emulation, against moto. Per run it measures init (spawn → first `/next`), the first and
//! a warm invocation with a realistic event, and the peak RSS after them; per function the zip
//! size of its binary.
//!
//! `--tls` puts a TLS endpoint in front of moto (see [`tls`]), so the first invocation pays the
//! handshake a new sandbox pays on AWS, and counts the connections each step opens;
//! `--initialization-type provisioned-concurrency` runs the functions as Lambda does under
//! provisioned concurrency (which makes kit prime their connections during init).
//!
//! `cargo run -p coldstart-bench -- --help` (or `make bench`) runs it; the smoke test in
//! `tests/` runs it once per function against debug binaries.

pub mod budgets;
pub mod catalog;
pub mod emulator;
pub mod python;
pub mod report;
pub mod tls;
pub mod world;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Bytes;

use catalog::{Function, Program};
use emulator::{Launch, Sandbox};
use report::{FunctionReport, Report, Sample, ms};
use world::World;

/// How long a function may take to reach its first `/next`, and to answer an invocation.
const LIMIT: Duration = Duration::from_secs(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs (fresh processes) per function.
    pub runs: usize,
    /// Directory of the function binaries, e.g. `target/release`.
    pub bin_dir: PathBuf,
    /// Cargo profile the binaries were built with (for the report).
    pub profile: String,
    /// Measure the Python equivalents too (installing them on first use).
    pub python: bool,
    /// Only the functions whose names contain one of these (all when empty).
    pub only: Vec<String>,
    /// Where the functions' logs go.
    pub log_dir: PathBuf,
    /// Extra environment variables for every function (for experiments, e.g. `SSL_CERT_FILE`).
    pub extra_env: Vec<(String, String)>,
    /// Reach moto through a TLS endpoint (see [`tls`]).
    pub tls: bool,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` of every function: `on-demand` (Lambda's default) or
    /// `provisioned-concurrency`.
    pub initialization_type: String,
}

/// Runs the bench and returns its report; failed runs are recorded in the report, not
/// returned as errors.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let root = world::repo_root();
    std::fs::create_dir_all(&options.log_dir)
        .with_context(|| format!("creating {}", options.log_dir.display()))?;
    let world = World::start(&root, options.tls).await?;
    let mut functions = catalog::rust_functions(world.specs());
    let mut python_skipped = None;
    let mut python = None;
    if options.python {
        match python::ensure(&root).await {
            Ok(interpreter) => {
                python = Some(interpreter);
                functions.extend(catalog::python_functions());
            }
            Err(reason) => python_skipped = Some(format!("{reason:#}")),
        }
    } else {
        python_skipped = Some("not requested (--no-python)".to_owned());
    }
    functions.retain(|f| {
        options.only.is_empty() || options.only.iter().any(|o| f.name.contains(o.as_str()))
    });
    // Runs are interleaved (every function once, then again), so a burst of load from
    // elsewhere on the machine spreads over all functions instead of skewing one.
    let launches: Vec<anyhow::Result<Launch>> = functions
        .iter()
        .map(|f| launch(f, options, &world, &root, python.as_deref()))
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); functions.len()];
    let mut errors: Vec<Vec<String>> = vec![Vec::new(); functions.len()];
    for run in 0..options.runs {
        for (i, function) in functions.iter().enumerate() {
            match &launches[i] {
                Ok(launch) => match measure(function, launch, &world, &root).await {
                    Ok(sample) => samples[i].push(sample),
                    Err(e) => errors[i].push(format!("{e:#}")),
                },
                Err(e) if run == 0 => errors[i].push(format!("{e:#}")),
                Err(_) => {}
            }
        }
    }
    let mut reports = Vec::new();
    for ((function, samples), errors) in functions.iter().zip(samples).zip(errors) {
        let mut report = FunctionReport::new(
            &function.name,
            function.kind,
            function.baseline,
            samples,
            errors,
        );
        if let Program::Binary(bin) = &function.program {
            report.zip_bytes = zip_size(&options.bin_dir.join(bin), &options.log_dir).ok();
        }
        reports.push(report);
    }
    let mut report = Report {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        runs: options.runs,
        profile: options.profile.clone(),
        arch: std::env::consts::ARCH.to_owned(),
        functions: reports,
        python_skipped,
        tls: options.tls,
        initialization_type: options.initialization_type.clone(),
    };
    report.relate_to_baselines();
    Ok(report)
}

fn launch(
    function: &Function,
    options: &Options,
    world: &World,
    root: &Path,
    python: Option<&Path>,
) -> anyhow::Result<Launch> {
    let log_file = options.log_dir.join(format!("{}.log", function.name));
    let mut env = world.env(&function.name);
    env.insert(
        "AWS_LAMBDA_INITIALIZATION_TYPE".into(),
        options.initialization_type.clone(),
    );
    env.extend(options.extra_env.iter().cloned());
    match &function.program {
        Program::Binary(bin) => {
            let program = options.bin_dir.join(bin);
            if !program.exists() {
                bail!(
                    "{} not built (cargo build --release of the function packages and baselines, as make bench does)",
                    program.display()
                );
            }
            Ok(Launch {
                program,
                args: Vec::new(),
                env,
                cwd: None,
                log_file,
            })
        }
        Program::Python { handler } => {
            let program = python
                .map(Path::to_path_buf)
                .context("no Python interpreter")?;
            let task_root = root.join("tools/bench/coldstart-bench/python");
            env.insert("LAMBDA_TASK_ROOT".into(), task_root.display().to_string());
            env.insert("_HANDLER".into(), (*handler).to_owned());
            env.insert("POWERTOOLS_SERVICE_NAME".into(), "orders".into());
            env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
            Ok(Launch {
                program,
                args: vec!["-m".into(), "awslambdaric".into(), (*handler).to_owned()],
                env,
                cwd: Some(task_root),
                log_file,
            })
        }
    }
}

/// One fresh process: init, a first and a warm invocation, then its peak RSS.
async fn measure(
    function: &Function,
    launch: &Launch,
    world: &World,
    root: &Path,
) -> anyhow::Result<Sample> {
    // Events are built before the process starts, so building them is not measured.
    let first_event = Bytes::from(serde_json::to_vec(
        &function.event.build(root, world).await?,
    )?);
    let warm_event = Bytes::from(serde_json::to_vec(
        &function.event.build(root, world).await?,
    )?);
    let connections = || world.tls.as_ref().map(tls::TlsProxy::connections);
    let before = connections();
    let mut sandbox = Sandbox::spawn(launch).await?;
    let init = sandbox.init(LIMIT).await.context("init")?;
    let mut opened = vec![diff(connections(), before)];
    let mut latencies = [0.0; 2];
    for (latency, (which, event)) in latencies
        .iter_mut()
        .zip([("first", first_event), ("warm", warm_event)])
    {
        let before = connections();
        let invoked = sandbox
            .invoke(event, LIMIT)
            .await
            .with_context(|| format!("{which} invocation"))?;
        let body = invoked
            .result
            .map_err(|e| anyhow::anyhow!("{which} invocation failed: {e}"))?;
        function
            .event
            .check(function.kind, &body)
            .with_context(|| format!("{which} invocation"))?;
        *latency = ms(invoked.latency);
        opened.push(diff(connections(), before));
    }
    Ok(Sample {
        init_ms: ms(init),
        first_ms: latencies[0],
        warm_ms: latencies[1],
        peak_rss_kib: sandbox.peak_rss_kib().unwrap_or(0),
        connections: opened.into_iter().collect(),
    })
}

fn diff(after: Option<u64>, before: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// The size of `binary` zipped as `bootstrap` (deflate, as `cargo lambda build
/// --output-format zip` uploads it), with the `zip` command.
pub fn zip_size(binary: &Path, scratch: &Path) -> anyhow::Result<u64> {
    let dir = scratch.join("zip");
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let bootstrap = dir.join("bootstrap");
    let archive = dir.join("bootstrap.zip");
    let _ = std::fs::remove_file(&archive);
    std::fs::copy(binary, &bootstrap).with_context(|| format!("copying {}", binary.display()))?;
    let status = std::process::Command::new("zip")
        .args(["-q", "-X"])
        .arg(&archive)
        .arg("bootstrap")
        .current_dir(&dir)
        .status()
        .context("running zip")?;
    if !status.success() {
        bail!("zip failed: {status}");
    }
    Ok(std::fs::metadata(&archive)?.len())
}
