//! [`Stack`]: everything started together — moto, provisioning, function pools, the HTTP API
//! and the event source mappings — and stopped together on drop.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use axum::body::Bytes;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::functions::{self, FunctionSpec};
use crate::http_api::{self, Api, Route};
use crate::jwt::JwtKey;
use crate::moto::{Endpoints, Motos};
use crate::report::{Delivery, Reporter, correlation_id};
use crate::resources::{self, Clients, Resources};
use crate::runtime::{FunctionPool, Invoked, Launch};
use crate::schedule::ScheduleRunner;
use crate::sqs::SqsPoller;
use crate::streams::StreamPoller;
use crate::template::{Context, Template};

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workspace root (holds `Cargo.toml`, `infra/`, `.venv/`).
    pub root: PathBuf,
    /// One SAM template to run instead of the stacks (default: `<root>/infra/platform.yaml` and
    /// every `<root>/services/*/template.yaml`, read as one by [`crate::stacks`]).
    pub template: Option<PathBuf>,
    /// An already running moto for every service; default: start them from `./.venv`, one per
    /// DynamoDB table and one for the rest ([`Motos`]).
    pub aws_endpoint: Option<String>,
    /// Run `bash tools/setup.sh` when moto is missing (the CLI does; tests fail instead).
    pub install_moto: bool,
    pub region: String,
    /// HTTP API port; 0 picks a free one.
    pub port: u16,
    /// Prefix of every resource name, so several stacks can share one moto.
    pub prefix: Option<String>,
    /// Template parameter overrides.
    pub parameters: HashMap<String, String>,
    /// Run release binaries (`cargo build --release`).
    pub release: bool,
    /// Build the function binaries first.
    pub build: bool,
    /// Run only these functions (short names such as `orders-relay`, or logical ids); empty = all.
    pub only: Vec<String>,
    /// Extra environment per function (short name or logical id).
    pub extra_env: BTreeMap<String, BTreeMap<String, String>>,
    /// Overrides every queue's `VisibilityTimeout` (tests use a short one).
    pub visibility_timeout: Option<u32>,
    /// Concurrent invocations per function when the template reserves none.
    pub max_concurrency: usize,
    pub serve_http: bool,
    /// Run the event source mappings and the schedules.
    pub run_mappings: bool,
    /// Fire every schedule this often instead of its `rate(…)`/`cron(…)` (tests, local runs).
    pub schedule_period: Option<Duration>,
    /// Chaos: SIGKILL a random function process this often.
    pub kill_every: Option<Duration>,
    /// Seed of the chaos picks.
    pub seed: u64,
    /// Chaos: this share (0..1) of the functions' AWS calls fail (throttling, 500s, delays,
    /// timeouts) through `tools/testing/fault_proxy.py` in front of moto.
    pub faults: Option<f64>,
    /// Print one line per request and delivery, and the start-up summary.
    pub print: bool,
    /// Copy function logs to stderr (they always go to `<state>/logs/`).
    pub echo_logs: bool,
    /// Where the JWT key and logs live; default `<root>/.local/local-stack`.
    pub state_dir: Option<PathBuf>,
}

impl Options {
    /// Defaults for the workspace at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            template: None,
            aws_endpoint: None,
            install_moto: false,
            region: "us-east-1".into(),
            port: 0,
            prefix: None,
            parameters: HashMap::new(),
            release: false,
            build: true,
            only: Vec::new(),
            extra_env: BTreeMap::new(),
            visibility_timeout: None,
            max_concurrency: 4,
            serve_http: true,
            run_mappings: true,
            schedule_period: None,
            kill_every: None,
            seed: 0,
            faults: None,
            print: false,
            echo_logs: false,
            state_dir: None,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.root.join(".local/local-stack"))
    }

    /// The template to run and the folder its relative `CodeUri`s start from: the one given, or
    /// the platform and every service stack as one (their `CodeUri`s made absolute).
    pub fn load_template(&self) -> anyhow::Result<(Template, PathBuf)> {
        match &self.template {
            Some(path) => {
                let dir = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| self.root.clone());
                Ok((Template::load(path)?, dir))
            }
            None => Ok((crate::stacks::load(&self.root)?, self.root.join("infra"))),
        }
    }
}

/// The workspace root: the nearest ancestor of `start` with a `[workspace]` Cargo.toml.
pub fn workspace_root(start: &Path) -> anyhow::Result<PathBuf> {
    start
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("no cargo workspace above {}", start.display()))
}

/// The workspace of the package being run: the one above `$CARGO_MANIFEST_DIR` at run time
/// (cargo and nextest set it for every test), else above `built_in` (the caller's
/// `env!("CARGO_MANIFEST_DIR")`). A test binary built for one checkout may run against a copy of
/// it that shares its target dir (tools/local/new-service/test.sh); the run-time value is the copy.
pub fn running_workspace(built_in: &Path) -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| built_in.to_path_buf(), PathBuf::from);
    workspace_root(&start)
        .or_else(|_| workspace_root(built_in))
        .unwrap_or_else(|_| built_in.to_path_buf())
}

/// The scopes the template's routes require (any one of a route's scopes lets a token in),
/// in template order: what a dev token carries unless told otherwise.
pub fn route_scopes(o: &Options) -> anyhow::Result<Vec<String>> {
    let (template, template_dir) = o.load_template()?;
    let mut ctx = Context::new(&template, "local", &o.region, &o.parameters)?;
    resources::name_resources(&template, &mut ctx, o.prefix.as_deref())?;
    let mut scopes: Vec<String> = Vec::new();
    for f in functions::functions(&template, &ctx, &o.root, &template_dir)? {
        for scope in f.routes.iter().flat_map(|r| &r.scopes) {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
    }
    Ok(scopes)
}

/// How long each start-up phase took.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    pub build: Duration,
    pub moto: Duration,
    pub provisioning: Duration,
    pub functions: Duration,
    /// moto + provisioning + all functions ready (the build excluded).
    pub total: Duration,
}

/// A running local stack. Dropping it stops everything it started.
#[derive(Debug)]
pub struct Stack {
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:3000`.
    pub api_url: String,
    /// Where the stack's AWS calls go: the moto of every service, and each table's own.
    pub endpoints: Endpoints,
    pub resources: Resources,
    /// Function pools by short name (`orders-relay`).
    pub functions: BTreeMap<String, Arc<FunctionPool>>,
    /// Template functions that were not started (binary missing or not selected).
    pub skipped: Vec<String>,
    pub reporter: Arc<Reporter>,
    pub key: JwtKey,
    pub clients: Clients,
    pub startup: Startup,
    /// Processes killed by `kill_every` so far.
    pub killed: Arc<std::sync::atomic::AtomicUsize>,
    /// The fault proxies' logs (one `fault_proxy: …` line per injected fault) when `faults` is
    /// set: one proxy per moto.
    pub fault_logs: Vec<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
    motos: Option<Motos>,
    /// Killed on drop (`kill_on_drop`).
    _fault_proxies: Vec<tokio::process::Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for f in self.functions.values() {
            f.stop();
        }
    }
}

impl Stack {
    /// Starts moto (unless given), provisions the template's resources, starts every function
    /// whose binary exists, serves the HTTP API and runs the event source mappings.
    pub async fn start(o: Options) -> anyhow::Result<Self> {
        let (template, template_dir) = o.load_template()?;
        let stack_name = o.prefix.clone().unwrap_or_else(|| "local".to_owned());
        let mut ctx = Context::new(&template, &stack_name, &o.region, &o.parameters)?;
        resources::name_resources(&template, &mut ctx, o.prefix.as_deref())?;

        // Which functions can run: their binary must exist in the workspace.
        let preview = functions::functions(&template, &ctx, &o.root, &template_dir)?;
        // By default every function with an event runs (a function without events, such as a
        // deployment hook, runs only when named in `only`).
        let selected = |f: &FunctionSpec| {
            let has_events = !(f.routes.is_empty()
                && f.sqs.is_empty()
                && f.streams.is_empty()
                && f.schedules.is_empty());
            if o.only.is_empty() {
                has_events
            } else {
                o.only
                    .iter()
                    .any(|n| n == &f.short_name || n == &f.logical_id)
            }
        };
        let mut skipped = Vec::new();
        let mut packages: Vec<String> = Vec::new();
        for f in &preview {
            match (&f.package, selected(f)) {
                (Some(p), true) => {
                    if !packages.contains(p) {
                        packages.push(p.clone());
                    }
                }
                (None, true) => {
                    eprintln!(
                        "local-stack: warning: skipping {} — binary {} is not in the workspace yet",
                        f.logical_id, f.binary
                    );
                    skipped.push(f.logical_id.clone());
                }
                (_, false) => skipped.push(f.logical_id.clone()),
            }
        }
        let t_build = Instant::now();
        if o.build && !packages.is_empty() {
            build(&o.root, &packages, o.release).await?;
        }
        let build_time = t_build.elapsed();

        let state = o.state_dir();
        let log_dir = state
            .join("logs")
            .join(o.prefix.as_deref().unwrap_or("default"));
        std::fs::create_dir_all(&log_dir)?;

        let t0 = Instant::now();
        let (motos, endpoints) = match &o.aws_endpoint {
            Some(endpoint) => (None, Endpoints::one(endpoint)),
            None => {
                let tables: Vec<String> = template
                    .of_kind("AWS::DynamoDB::Table", &ctx)
                    .map(|(id, _)| ctx.refs[id].clone())
                    .collect();
                let motos = Motos::start(&o.root, o.install_moto, &log_dir, &tables).await?;
                let endpoints = motos.endpoints();
                (Some(motos), endpoints)
            }
        };
        let moto_time = t0.elapsed();

        let t1 = Instant::now();
        let clients = Clients::new(&endpoints, &o.region).await;
        let resources = resources::provision(&template, &mut ctx, &clients, o.visibility_timeout)
            .await
            .with_context(|| format!("provisioning in moto at {endpoints:?}"))?;
        let provisioning_time = t1.elapsed();

        let t2 = Instant::now();
        // The functions reach AWS through a fault proxy per moto when asked; the runner's own
        // pollers (AWS's side of the mappings) keep talking to moto directly.
        let mut fault_proxies = Vec::new();
        let mut fault_logs = Vec::new();
        let mut function_endpoints = endpoints.clone();
        if let Some(rate) = o.faults.filter(|f| *f > 0.0) {
            let slots = std::iter::once(("fault-proxy".to_owned(), &mut function_endpoints.aws))
                .chain(
                    function_endpoints
                        .tables
                        .iter_mut()
                        .map(|(table, endpoint)| (format!("fault-proxy-{table}"), endpoint)),
                );
            for (i, (name, endpoint)) in slots.enumerate() {
                let log = log_dir.join(format!("{name}.log"));
                let (child, url) =
                    start_fault_proxy(&o.root, endpoint, rate, o.seed + i as u64, &log).await?;
                fault_proxies.push(child);
                fault_logs.push(log);
                *endpoint = url;
            }
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| o.root.join("target"));
        let exe_dir = target.join(if o.release { "release" } else { "debug" });
        let specs = functions::functions(&template, &ctx, &o.root, &template_dir)?;
        let mut pools: BTreeMap<String, Arc<FunctionPool>> = BTreeMap::new();
        for spec in specs
            .into_iter()
            .filter(|f| f.package.is_some() && selected(f))
        {
            let executable = exe_dir.join(&spec.binary);
            if !executable.exists() {
                eprintln!(
                    "local-stack: warning: skipping {} — {} is not built (drop --no-build)",
                    spec.logical_id,
                    executable.display()
                );
                skipped.push(spec.logical_id.clone());
                continue;
            }
            let env = function_env(&spec, &function_endpoints, &o.region)
                .with_context(|| format!("the environment of {}", spec.logical_id))?;
            write_env_file(&state, o.prefix.as_deref(), &spec, &env)?;
            let limit = spec.reserved_concurrency.unwrap_or(o.max_concurrency);
            let log_file = log_dir.join(format!("{}.log", spec.short_name));
            let key = spec.short_name.clone();
            let extra = o
                .extra_env
                .get(&spec.short_name)
                .or_else(|| o.extra_env.get(&spec.logical_id))
                .cloned()
                .unwrap_or_default();
            let pool = FunctionPool::new(
                Launch {
                    spec: Arc::new(spec),
                    executable,
                    env,
                    log_file,
                    echo_logs: o.echo_logs,
                },
                limit,
            );
            pool.set_env(extra);
            pools.insert(key, Arc::new(pool));
        }
        let warmups = pools.values().map(|p| p.warm());
        for r in futures::future::join_all(warmups).await {
            r?;
        }
        let functions_time = t2.elapsed();

        let reporter = Arc::new(Reporter::new(o.print));
        let key = JwtKey::load_or_create(&state.join("jwt.json"))?;
        let mut tasks: Vec<JoinHandle<()>> = pools
            .values()
            .map(|p| tokio::spawn(p.clone().supervise()))
            .collect();

        let mut api_url = String::new();
        if o.serve_http {
            let api_spec = functions::http_api(&template, &ctx)?;
            let mut routes = Vec::new();
            for pool in pools.values() {
                for r in &pool.spec().routes {
                    let authorizer = r
                        .authorizer
                        .clone()
                        .or_else(|| api_spec.default_authorizer.clone());
                    routes.push(Route {
                        method: r.method.clone(),
                        path: r.path.clone(),
                        authorized: authorizer.is_some_and(|a| a != "NONE"),
                        scopes: r.scopes.clone(),
                        function: pool.clone(),
                    });
                }
            }
            let api = Arc::new(Api::new(
                routes,
                key.clone(),
                reporter.clone(),
                o.region.clone(),
                ctx.account.clone(),
            ));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", o.port))
                .await
                .with_context(|| format!("binding the HTTP API to 127.0.0.1:{}", o.port))?;
            api_url = format!("http://{}", listener.local_addr()?);
            let page = crate::page::Page::new(reporter.clone(), clients.sqs.clone(), &resources);
            let app = crate::page::router(Arc::new(page))
                .merge(http_api::router(api))
                .into_make_service_with_connect_info::<SocketAddr>();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }

        if o.run_mappings {
            for pool in pools.values() {
                for m in pool.spec().sqs.iter().filter(|m| m.enabled) {
                    let Some((_, queue)) = resources.queue_by_arn(&m.queue_arn) else {
                        eprintln!(
                            "local-stack: warning: {} polls unknown queue {}",
                            pool.spec().name,
                            m.queue_arn
                        );
                        continue;
                    };
                    let poller = SqsPoller {
                        mapping: m.clone(),
                        queue: queue.clone(),
                        function: pool.clone(),
                        sqs: clients.sqs.clone(),
                        region: o.region.clone(),
                        reporter: reporter.clone(),
                    };
                    tasks.push(tokio::spawn(poller.run()));
                }
                for m in pool.spec().streams.iter().filter(|m| m.enabled) {
                    let on_failure_url = m
                        .on_failure
                        .as_deref()
                        .and_then(|arn| resources.queue_by_arn(arn))
                        .map(|(_, q)| q.url.clone());
                    let poller = StreamPoller {
                        mapping: m.clone(),
                        function: pool.clone(),
                        streams: resources
                            .tables
                            .values()
                            .find(|t| t.stream_arn.as_deref() == Some(m.stream_arn.as_str()))
                            .map_or(&clients.streams, |t| clients.streams_of(&t.name))
                            .clone(),
                        sqs: clients.sqs.clone(),
                        on_failure_url,
                        region: o.region.clone(),
                        reporter: reporter.clone(),
                    };
                    tasks.push(tokio::spawn(poller.run()));
                }
                for sc in pool.spec().schedules.iter().filter(|s| s.enabled) {
                    let runner = ScheduleRunner {
                        schedule: sc.clone(),
                        function: pool.clone(),
                        reporter: reporter.clone(),
                        region: o.region.clone(),
                        account: ctx.account.clone(),
                        period: o.schedule_period,
                    };
                    tasks.push(tokio::spawn(runner.run()));
                }
            }
        }

        let killed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        if let Some(every) = o.kill_every {
            tasks.push(tokio::spawn(
                crate::chaos::Killer {
                    pools: pools.values().cloned().collect(),
                    every,
                    seed: o.seed,
                    killed: killed.clone(),
                }
                .run(),
            ));
        }

        let startup = Startup {
            build: build_time,
            moto: moto_time,
            provisioning: provisioning_time,
            functions: functions_time,
            total: t0.elapsed(),
        };
        let stack = Self {
            api_url,
            endpoints,
            resources,
            functions: pools,
            skipped,
            reporter,
            key,
            clients,
            startup,
            killed,
            fault_logs,
            tasks,
            motos,
            _fault_proxies: fault_proxies,
        };
        if o.print {
            stack.print_summary();
        }
        Ok(stack)
    }

    #[allow(clippy::print_stdout)]
    fn print_summary(&self) {
        println!("local-stack: moto at {}", self.endpoints.aws);
        for (id, t) in &self.resources.tables {
            println!(
                "  table  {id:<18} {} (moto at {})",
                t.name,
                self.endpoints.table(&t.name)
            );
        }
        for (id, q) in &self.resources.queues {
            println!("  queue  {id:<18} {}", q.url);
        }
        for (id, b) in &self.resources.buses {
            println!("  bus    {id:<18} {b}");
        }
        for (name, f) in &self.functions {
            let s = f.spec();
            println!(
                "  fn     {name:<18} as {} (timeout {}s, {} MB, up to {} at once)",
                s.name,
                s.timeout_s,
                s.memory_mb,
                f.limit()
            );
            for r in &s.routes {
                println!("           {} {}", r.method, r.path);
            }
            for sc in &s.schedules {
                println!(
                    "           schedule {} {}{}",
                    sc.event_id,
                    sc.expression,
                    if sc.enabled { "" } else { " (disabled)" }
                );
            }
        }
        for s in &self.skipped {
            println!("  skipped {s}");
        }
        let st = &self.startup;
        println!(
            "local-stack: started in {} ms (moto {} ms, provisioning {} ms, functions ready {} ms; build {} ms not counted)",
            st.total.as_millis(),
            st.moto.as_millis(),
            st.provisioning.as_millis(),
            st.functions.as_millis(),
            st.build.as_millis()
        );
        if !self.api_url.is_empty() {
            println!("local-stack: HTTP API on {}", self.api_url);
        }
    }

    /// The pool of a function by short name (`orders-relay`), logical id or local name.
    pub fn function(&self, name: &str) -> anyhow::Result<&Arc<FunctionPool>> {
        self.functions
            .get(name)
            .or_else(|| {
                self.functions
                    .values()
                    .find(|f| f.spec().logical_id == name || f.spec().name == name)
            })
            .ok_or_else(|| {
                anyhow!(
                    "function {name} is not running (skipped: {:?})",
                    self.skipped
                )
            })
    }

    /// Sets extra environment variables of a function and restarts it so they apply.
    pub fn set_env(&self, function: &str, vars: BTreeMap<String, String>) -> anyhow::Result<()> {
        let f = self.function(function)?;
        f.set_env(vars);
        f.restart();
        Ok(())
    }

    /// Restarts a function: its next invocation starts a fresh process.
    pub fn restart(&self, function: &str) -> anyhow::Result<()> {
        self.function(function)?.restart();
        Ok(())
    }

    /// Invokes a function directly with a raw event (like `aws lambda invoke`).
    pub async fn invoke(&self, function: &str, event: &Value) -> anyhow::Result<Invoked> {
        let f = self.function(function)?;
        let invoked = f.invoke(Bytes::from(event.to_string())).await;
        self.reporter.record(Delivery {
            function: f.spec().name.clone(),
            source: "invoke".into(),
            ids: Vec::new(),
            failed_ids: Vec::new(),
            success: invoked.outcome.is_success(),
            outcome: invoked.outcome.describe(),
            correlation_id: invoked.outcome.json().as_ref().and_then(correlation_id),
            duration: invoked.duration,
            ..Delivery::saga(event, &invoked)
        });
        Ok(invoked)
    }

    /// A dev token signed with the local key.
    pub fn token(&self, sub: &str, scopes: &[&str]) -> anyhow::Result<String> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.key.mint(sub, &scopes, 3600)
    }

    /// How many faults the fault proxy has injected so far (0 without `faults`).
    pub fn faults_injected(&self) -> usize {
        self.fault_logs
            .iter()
            .filter_map(|log| std::fs::read_to_string(log).ok())
            .map(|text| {
                text.lines()
                    .filter(|l| l.starts_with("fault_proxy: "))
                    .count()
            })
            .sum()
    }

    /// Stops everything now (also done on drop).
    pub async fn stop(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for f in self.functions.values() {
            f.stop();
        }
        if let Some(m) = self.motos.take() {
            m.stop().await;
        }
    }
}

/// The environment Lambda gives a function, plus the template's variables.
fn function_env(
    spec: &FunctionSpec,
    endpoints: &Endpoints,
    region: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = spec.env.clone();
    let endpoint_vars = endpoints.env(&spec.env)?;
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    for (k, v) in endpoint_vars {
        set(k, &v);
    }
    set("AWS_REGION", region);
    set("AWS_DEFAULT_REGION", region);
    set("AWS_ACCESS_KEY_ID", "testing");
    set("AWS_SECRET_ACCESS_KEY", "testing");
    set("AWS_EC2_METADATA_DISABLED", "true");
    set("AWS_LAMBDA_FUNCTION_NAME", &spec.name);
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &spec.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        &format!("/aws/lambda/{}", spec.name),
    );
    set("AWS_LAMBDA_LOG_STREAM_NAME", "local");
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    set("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023");
    set("TZ", ":UTC");
    set("_HANDLER", "bootstrap");
    if let Some(f) = &spec.log_format {
        set("AWS_LAMBDA_LOG_FORMAT", f);
    }
    if let Some(l) = &spec.app_log_level {
        set("AWS_LAMBDA_LOG_LEVEL", l);
    }
    Ok(env)
}

/// Writes `<state>/env/<short name>.env` (the template's variables and the moto endpoint), so that
/// `cargo lambda watch --env-file …` runs one function against the running stack.
fn write_env_file(
    state: &Path,
    prefix: Option<&str>,
    spec: &FunctionSpec,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let dir = state.join("env").join(prefix.unwrap_or("default"));
    std::fs::create_dir_all(&dir)?;
    let text: String = env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_LAMBDA_") && !k.starts_with('_'))
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    std::fs::write(dir.join(format!("{}.env", spec.short_name)), text)?;
    Ok(())
}

/// Starts `tools/testing/fault_proxy.py` in front of `target`; returns it and its URL.
async fn start_fault_proxy(
    root: &Path,
    target: &str,
    rate: f64,
    seed: u64,
    log: &Path,
) -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new("python3")
        .arg(root.join("tools/testing/fault_proxy.py"))
        .args(["--target", target, "--rate", &rate.to_string()])
        .args(["--seed", &seed.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting python3 tools/testing/fault_proxy.py")?;
    let stdout = child.stdout.take().context("the fault proxy's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("the fault proxy did not start within 10 s")??
        .unwrap_or_default();
    let url = first
        .strip_prefix("listening on ")
        .context("the fault proxy did not say where it listens")?
        .to_owned();
    eprintln!(
        "local-stack: chaos: {:.0} % of the functions' AWS calls fail through {url} (seed {seed}; log {})",
        rate * 100.0,
        log.display()
    );
    Ok((child, url))
}

/// `cargo build --workspace --bins` (release when asked), output to our stderr: every binary,
/// with the one command the Makefile, the scripts and the tests use. Building only `packages`
/// (`-p` …) would unify the dependencies' features differently and compile the AWS SDK again.
async fn build(root: &Path, packages: &[String], release: bool) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = tokio::process::Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    eprintln!(
        "local-stack: cargo build --workspace --bins{} (for {})",
        if release { " --release" } else { "" },
        packages.join(", ")
    );
    let status = cmd.status().await.context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --workspace --bins failed");
    }
    Ok(())
}
