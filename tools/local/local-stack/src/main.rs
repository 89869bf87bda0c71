//! `local-stack up | token | invoke | trace`: see docs/local.md.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use local_stack::jwt::JwtKey;
use local_stack::stack::{route_scopes, workspace_root};
use local_stack::{Options, Stack};

#[derive(Debug, Parser)]
#[command(
    name = "local-stack",
    about = "Runs the application locally from infra/platform.yaml and services/*/template.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start moto, provision, run every function, serve the HTTP API and the event source mappings.
    Up {
        #[command(flatten)]
        common: Common,
        /// HTTP API port.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Copy function logs to stderr.
        #[arg(long)]
        logs: bool,
    },
    /// Mint a dev JWT for the local HTTP API and print it.
    Token {
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Space- or comma-separated scopes, e.g. "shop/orders shop/admin" (an admin token
        /// carries both). Default: the scopes the template's routes require (`<AppName>/orders`).
        #[arg(long, conflicts_with = "no_scopes")]
        scopes: Option<String>,
        /// A token without any scope (every route answers 403), e.g. to see the authorizer refuse it.
        #[arg(long)]
        no_scopes: bool,
        /// Template parameter override NAME=VALUE (repeatable), for the default scopes.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// Workspace root (default: found from the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Send a raw event JSON file to one function through the runtime emulation; print the response.
    Invoke {
        /// Binary name (e.g. orders-http) or logical id.
        function: String,
        /// Event JSON file.
        event: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Print one order's saga timeline from a running stack (`make run`): lanes, event types,
    /// outcomes, durations and trace ids; what `/_local/?order=<id>` draws.
    Trace {
        /// The order id.
        order: String,
        /// Where the stack's HTTP API listens.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        /// Width of the output in characters (default: $COLUMNS, else 100).
        #[arg(long)]
        width: Option<usize>,
    },
    /// Print the HTTP API's whole OpenAPI document (YAML): docs/openapi.yaml with every
    /// services/*/openapi.yaml.
    Openapi,
}

#[derive(Debug, Args)]
struct Common {
    /// Use this AWS endpoint (a running moto) instead of starting one.
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// One template to run (default: infra/platform.yaml and every services/*/template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Run release builds of the functions.
    #[arg(long)]
    release: bool,
    /// Do not run cargo build first.
    #[arg(long)]
    no_build: bool,
    /// Prefix every resource name (to share a moto with other stacks).
    #[arg(long)]
    prefix: Option<String>,
    /// Run only these functions (binary names or logical ids), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Concurrent invocations per function (unless the template reserves concurrency).
    #[arg(long, default_value_t = 4)]
    max_concurrency: usize,
    /// Extra env var for a function: FUNCTION:NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "FUNCTION:NAME=VALUE")]
    env: Vec<String>,
    /// Template parameter override NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Fire every Schedule/ScheduleV2 event this often instead of its rate/cron, e.g. 2s.
    #[arg(long, value_parser = local_stack::schedule::parse_duration, value_name = "DURATION")]
    schedule_period: Option<std::time::Duration>,
    /// Chaos: SIGKILL a random function process this often, e.g. 1.5s.
    #[arg(long, value_parser = local_stack::schedule::parse_duration, value_name = "DURATION")]
    kill_every: Option<std::time::Duration>,
    /// Seed of the chaos picks (--kill-every, --faults).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Chaos: this share (0..1) of the functions' AWS calls fail (throttling, 500s, delays, timeouts).
    #[arg(long, value_name = "SHARE")]
    faults: Option<f64>,
}

impl Common {
    fn options(&self) -> anyhow::Result<Options> {
        let root = workspace_root(&std::env::current_dir()?)?;
        let mut o = Options::new(root);
        o.template = self.template.clone();
        o.aws_endpoint = self.aws_endpoint.clone();
        o.install_moto = true;
        o.release = self.release;
        o.build = !self.no_build;
        o.prefix = self.prefix.clone();
        o.only = self.only.clone();
        o.max_concurrency = self.max_concurrency;
        o.region = self.region.clone();
        o.schedule_period = self.schedule_period;
        o.kill_every = self.kill_every;
        o.seed = self.seed;
        o.faults = self.faults;
        for e in &self.env {
            let (f, kv) = e
                .split_once(':')
                .context("--env wants FUNCTION:NAME=VALUE")?;
            let (k, v) = kv
                .split_once('=')
                .context("--env wants FUNCTION:NAME=VALUE")?;
            o.extra_env
                .entry(f.to_owned())
                .or_default()
                .insert(k.to_owned(), v.to_owned());
        }
        for p in &self.params {
            let (k, v) = p.split_once('=').context("--param wants NAME=VALUE")?;
            o.parameters.insert(k.to_owned(), v.to_owned());
        }
        Ok(o)
    }
}

#[allow(clippy::print_stdout)]
fn print(text: &str) {
    println!("{text}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up { common, port, logs } => {
            let mut o = common.options()?;
            o.port = port;
            o.print = true;
            o.echo_logs = logs;
            let stack = Stack::start(o).await?;
            print(
                "local-stack: ready; mint a token with `cargo run -p local-stack -- token --sub alice`; Ctrl-C stops",
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
            print("local-stack: stopping");
            stack.stop().await;
        }
        Command::Token {
            sub,
            scopes,
            no_scopes,
            params,
            ttl,
            root,
        } => {
            let root = match root {
                Some(r) => r,
                None => workspace_root(&std::env::current_dir()?)?,
            };
            let mut o = Options::new(root);
            for p in &params {
                let (k, v) = p.split_once('=').context("--param wants NAME=VALUE")?;
                o.parameters.insert(k.to_owned(), v.to_owned());
            }
            let key = JwtKey::load_or_create(&o.state_dir().join("jwt.json"))?;
            let scopes: Vec<String> = match (no_scopes, scopes) {
                (true, _) => Vec::new(),
                (false, Some(list)) => list
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                (false, None) => route_scopes(&o)?,
            };
            print(&key.mint(&sub, &scopes, ttl)?);
        }
        Command::Invoke {
            function,
            event,
            common,
        } => {
            let mut o = common.options()?;
            o.serve_http = false;
            o.run_mappings = false;
            if o.only.is_empty() {
                o.only = vec![function.clone()];
            }
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("reading {}", event.display()))?;
            let payload: serde_json::Value = serde_json::from_str(&text)?;
            let stack = Stack::start(o).await?;
            let invoked = stack.invoke(&function, &payload).await?;
            let result = match invoked.outcome.json() {
                Some(v) => Ok(serde_json::to_string_pretty(&v)?),
                None => Err(anyhow::anyhow!("{}", invoked.outcome.describe())),
            };
            stack.stop().await;
            print(&result?);
        }
        Command::Trace { order, url, width } => {
            let view = local_stack::page::fetch_order(&url, &order).await?;
            let width = width
                .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
                .unwrap_or(100);
            print(local_stack::timeline::render_text(&view, width).trim_end());
        }
        Command::Openapi => {
            let root = workspace_root(&std::env::current_dir()?)?;
            let document = local_stack::openapi::document(&root)?;
            print(serde_norway::to_string(&document)?.trim_end());
        }
    }
    Ok(())
}
