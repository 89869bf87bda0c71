//! An emulation of the Lambda Runtime API: each function process ("sandbox") gets its own
//! `AWS_LAMBDA_RUNTIME_API` endpoint serving `/2018-06-01/runtime/invocation/next`,
//! `/{id}/response`, `/{id}/error` and `/init/error`. A function has a pool of sandboxes, one
//! per concurrent invocation up to its limit. A sandbox whose process crashes or overruns its
//! timeout is killed and its invocation reported as an error, like Lambda does; a supervisor
//! replaces every process that dies (idle, mid-invocation or while starting), with a backoff.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use crate::functions::FunctionSpec;

/// How long a process may take from start to its first `/next` (Lambda's init phase limit).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What an invocation ended with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function posted a response.
    Response(Bytes),
    /// The function posted an error (`/{id}/error`).
    FunctionError { error_type: String, message: String },
    /// The process exited during the invocation; it was restarted.
    Crashed(String),
    /// The invocation ran past the function's timeout; the process was killed and restarted.
    TimedOut(Duration),
    /// The process failed to initialise (`/init/error`, exit or no `/next` in time).
    InitFailed(String),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Response(_))
    }

    /// The response as JSON (a non-JSON body becomes a JSON string).
    pub fn json(&self) -> Option<serde_json::Value> {
        match self {
            Outcome::Response(b) => Some(serde_json::from_slice(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            })),
            _ => None,
        }
    }

    /// The `itemIdentifier`s of a partial batch response (`batchItemFailures`); empty for
    /// anything else.
    pub fn batch_item_failures(&self) -> Vec<String> {
        self.json()
            .as_ref()
            .and_then(|r| r.get("batchItemFailures"))
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("itemIdentifier").and_then(serde_json::Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// A short description for log lines.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Response(_) => "ok".into(),
            Outcome::FunctionError {
                error_type,
                message,
            } => format!("error {error_type}: {message}"),
            Outcome::Crashed(s) => format!("crashed ({s}), restarted"),
            Outcome::TimedOut(d) => format!("timed out after {}s, restarted", d.as_secs()),
            Outcome::InitFailed(m) => format!("init failed: {m}"),
        }
    }
}

/// One completed invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub request_id: String,
    /// The X-Ray trace header the invocation ran with (`Lambda-Runtime-Trace-Id`).
    pub trace_header: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

#[derive(Debug)]
struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    trace_id: String,
}

/// State shared between one process and its runtime API endpoint.
#[derive(Debug, Default)]
struct Endpoint {
    slot: Mutex<Option<Invocation>>,
    notify: Notify,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    nexts: watch::Sender<u64>,
    arn: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn next(State(ep): State<Arc<Endpoint>>) -> Response {
    ep.nexts.send_modify(|n| *n += 1);
    let inv = loop {
        let notified = ep.notify.notified();
        if let Some(inv) = lock(&ep.slot).take() {
            break inv;
        }
        notified.await;
    };
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", &inv.request_id);
    put("lambda-runtime-deadline-ms", &inv.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &ep.arn);
    put("lambda-runtime-trace-id", &inv.trace_id);
    put("content-type", "application/json");
    (StatusCode::OK, h, inv.payload).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

fn complete(ep: &Endpoint, id: &str, outcome: Outcome) -> Response {
    match lock(&ep.pending).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"errorMessage": format!("unknown request id {id}"), "errorType": "InvalidRequestID"})),
        )
            .into_response(),
    }
}

async fn response(
    State(ep): State<Arc<Endpoint>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    complete(&ep, &id, Outcome::Response(body))
}

fn error_of(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error_type = v
        .get("errorType")
        .and_then(|t| t.as_str())
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("Unhandled")
        .to_owned();
    let message = v
        .get("errorMessage")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}

async fn error(
    State(ep): State<Arc<Endpoint>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = error_of(&headers, &body);
    complete(
        &ep,
        &id,
        Outcome::FunctionError {
            error_type,
            message,
        },
    )
}

async fn init_error(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let (t, m) = error_of(&headers, &body);
    *lock(&ep.init_error) = Some(format!("{t}: {m}"));
    accepted()
}

/// How to start a function's process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub spec: Arc<FunctionSpec>,
    pub executable: PathBuf,
    /// Everything but `AWS_LAMBDA_RUNTIME_API`.
    pub env: BTreeMap<String, String>,
    pub log_file: PathBuf,
    pub echo_logs: bool,
}

/// One function process and its runtime API endpoint. The process is owned by a watcher task
/// that reaps it whenever it exits (so a death is seen even while the sandbox is idle) and
/// kills it when the sandbox is dropped.
#[derive(Debug)]
struct Sandbox {
    ep: Arc<Endpoint>,
    server: JoinHandle<()>,
    generation: u64,
    pid: Option<u32>,
    /// `Some(how it ended)` once the process has exited.
    exit: watch::Receiver<Option<String>>,
    /// Dropping it (with the sandbox) kills the process.
    _kill: oneshot::Sender<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Sandbox {
    async fn start(
        launch: &Launch,
        extra_env: &BTreeMap<String, String>,
        generation: u64,
        pids: Arc<Mutex<Vec<u32>>>,
        exited: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (nexts, _) = watch::channel(0);
        let ep = Arc::new(Endpoint {
            arn: launch.spec.arn.clone(),
            nexts,
            ..Endpoint::default()
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(ep.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut cmd = Command::new(&launch.executable);
        cmd.env_clear()
            .envs(std::env::var("PATH").map(|p| ("PATH".to_owned(), p)))
            .envs(&launch.env)
            .envs(extra_env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(e).with_context(|| format!("starting {}", launch.executable.display()));
            }
        };
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_file)
        {
            Ok(f) => Arc::new(Mutex::new(f)),
            Err(e) => {
                server.abort();
                return Err(e.into());
            }
        };
        let prefix = launch.spec.name.clone();
        let streams: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as _),
            child.stderr.take().map(|s| Box::new(s) as _),
        ];
        for stream in streams.into_iter().flatten() {
            let (log, prefix, echo) = (log.clone(), prefix.clone(), launch.echo_logs);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = writeln!(lock(&log), "{line}");
                    if echo {
                        eprintln!("  [{prefix}] {line}");
                    }
                }
            });
        }
        let pid = child.id();
        if let Some(pid) = pid {
            lock(&pids).push(pid);
        }
        let (kill, killed) = oneshot::channel::<()>();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let how = tokio::select! {
                status = child.wait() => describe_exit(status),
                _ = killed => {
                    let _ = child.kill().await;
                    "killed by the runner".to_owned()
                }
            };
            if let Some(pid) = pid {
                lock(&pids).retain(|p| *p != pid);
            }
            let _ = exit_tx.send(Some(how));
            exited.notify_one();
        });
        Ok(Self {
            ep,
            server,
            generation,
            pid,
            exit,
            _kill: kill,
        })
    }

    /// Resolves with how the process ended once it has exited.
    async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(how) => how.clone().unwrap_or_default(),
            Err(_) => "its watcher stopped".to_owned(),
        }
    }

    /// Waits until the process polls `/next` for the first time (at most [`INIT_TIMEOUT`]).
    async fn ready(&self) -> Result<(), String> {
        let mut rx = self.ep.nexts.subscribe();
        tokio::select! {
            r = rx.wait_for(|n| *n > 0) => r.map(|_| ()).map_err(|e| e.to_string()),
            how = self.exited() => {
                let init = lock(&self.ep.init_error).clone();
                Err(init.unwrap_or_else(|| format!("process exited during init: {how}")))
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => Err(format!("no /next within {}s", INIT_TIMEOUT.as_secs())),
        }
    }

    fn is_ready(&self) -> bool {
        *self.ep.nexts.borrow() > 0
    }

    /// Runs one invocation: at most [`INIT_TIMEOUT`] for a process that is still starting, then
    /// at most `timeout`.
    async fn invoke(
        &self,
        request_id: &str,
        trace_header: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Outcome {
        if !self.is_ready()
            && let Err(e) = self.ready().await
        {
            return Outcome::InitFailed(e);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.ep.pending).insert(request_id.to_owned(), tx);
        let deadline_ms = chrono::Utc::now().timestamp_millis() as u64 + timeout.as_millis() as u64;
        *lock(&self.ep.slot) = Some(Invocation {
            request_id: request_id.to_owned(),
            payload,
            deadline_ms,
            trace_id: trace_header.to_owned(),
        });
        self.ep.notify.notify_waiters();
        let outcome = tokio::select! {
            r = rx => r.unwrap_or_else(|_| Outcome::Crashed("runtime endpoint closed".into())),
            how = self.exited() => Outcome::Crashed(how),
            _ = tokio::time::sleep(timeout) => Outcome::TimedOut(timeout),
        };
        lock(&self.ep.pending).remove(request_id);
        lock(&self.ep.slot).take();
        outcome
    }

    /// Whether the process is still running.
    fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    fn pid_text(&self) -> String {
        self.pid.map_or_else(|| "?".to_owned(), |p| p.to_string())
    }
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

/// A new X-Ray trace header, as Lambda starts for an invocation that continues no trace.
pub fn new_trace_header() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        chrono::Utc::now().timestamp(),
        &id[..24],
        &parent[..16]
    )
}

/// First wait before the supervisor replaces a dead process.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between replacements of processes that keep dying.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A replacement this long after the previous one starts again from [`FIRST_BACKOFF`].
const BACKOFF_RESET: Duration = Duration::from_secs(10);

/// The sandboxes of one function. Invocations take an idle sandbox or start one (up to the
/// function's concurrency limit); [`FunctionPool::supervise`] keeps at least one process
/// running, replacing any that dies, like Lambda replaces a dead sandbox.
#[derive(Debug)]
pub struct FunctionPool {
    launch: Launch,
    limit: usize,
    permits: Semaphore,
    idle: Mutex<Vec<Sandbox>>,
    extra_env: Mutex<BTreeMap<String, String>>,
    generation: Mutex<u64>,
    pids: Arc<Mutex<Vec<u32>>>,
    /// Woken when a process exits or an invocation discards its sandbox.
    exited: Arc<Notify>,
    stopped: AtomicBool,
}

impl FunctionPool {
    pub fn new(launch: Launch, limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            launch,
            limit,
            permits: Semaphore::new(limit),
            idle: Mutex::new(Vec::new()),
            extra_env: Mutex::new(BTreeMap::new()),
            generation: Mutex::new(0),
            pids: Arc::default(),
            exited: Arc::default(),
            stopped: AtomicBool::new(false),
        }
    }

    /// The file the function's processes write their log lines to.
    pub fn log_file(&self) -> &std::path::Path {
        &self.launch.log_file
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.launch.spec
    }

    /// Concurrent invocations this function may run.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Process ids of the function's running processes.
    pub fn pids(&self) -> Vec<u32> {
        lock(&self.pids).clone()
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    async fn start_sandbox(&self) -> anyhow::Result<Sandbox> {
        let generation = *lock(&self.generation);
        let extra = lock(&self.extra_env).clone();
        Sandbox::start(
            &self.launch,
            &extra,
            generation,
            self.pids.clone(),
            self.exited.clone(),
        )
        .await
    }

    /// Starts one process and waits until it polls for work.
    pub async fn warm(&self) -> anyhow::Result<()> {
        let sb = self.start_sandbox().await?;
        sb.ready()
            .await
            .map_err(|e| anyhow!("{}: {e}", self.launch.spec.name))?;
        lock(&self.idle).push(sb);
        Ok(())
    }

    /// Sets extra environment variables (on top of the template's) for processes started from
    /// now on; call [`FunctionPool::restart`] to apply them to running ones.
    pub fn set_env(&self, vars: BTreeMap<String, String>) {
        *lock(&self.extra_env) = vars;
    }

    /// Stops the idle processes; busy ones are stopped when their invocation ends. The
    /// supervisor (or the next invocation) starts a fresh process.
    pub fn restart(&self) {
        *lock(&self.generation) += 1;
        lock(&self.idle).clear();
        self.exited.notify_one();
    }

    /// Stops every idle process for good: the supervisor starts no more.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.restart();
    }

    /// Drops idle sandboxes of an old generation or whose process died, logging the deaths.
    fn prune_idle(&self) {
        let generation = *lock(&self.generation);
        let dead: Vec<Sandbox> = {
            let mut idle = lock(&self.idle);
            let (keep, dead) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|s| s.generation == generation && s.alive());
            *idle = keep;
            dead
        };
        for sb in dead.iter().filter(|s| s.generation == generation) {
            let how = sb.exit.borrow().clone().unwrap_or_default();
            eprintln!(
                "local-stack: {}: process {} died while idle ({how})",
                self.spec().name,
                sb.pid_text()
            );
        }
    }

    /// Processes alive or about to be: idle ones plus one per invocation in flight.
    fn live(&self) -> usize {
        lock(&self.idle).iter().filter(|s| s.alive()).count() + self.in_flight()
    }

    /// Keeps at least one process of the function running until [`FunctionPool::stop`]: a
    /// process that dies (idle, mid-invocation, or while starting) or is killed after a
    /// timeout is replaced after a short backoff that grows while replacements keep dying.
    pub async fn supervise(self: Arc<Self>) {
        let mut backoff = FIRST_BACKOFF;
        let mut last_start: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = self.exited.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            self.prune_idle();
            if self.live() > 0 {
                continue;
            }
            backoff = match last_start {
                Some(t) if t.elapsed() < BACKOFF_RESET => (backoff * 2).min(MAX_BACKOFF),
                _ => FIRST_BACKOFF,
            };
            eprintln!(
                "local-stack: {}: no process running; starting one in {} ms",
                self.spec().name,
                backoff.as_millis()
            );
            tokio::time::sleep(backoff).await;
            if self.stopped.load(Ordering::SeqCst) || self.live() > 0 {
                continue;
            }
            last_start = Some(Instant::now());
            let started = match self.start_sandbox().await {
                Ok(sb) => match sb.ready().await {
                    Ok(()) => Ok(sb),
                    Err(e) => Err(e),
                },
                Err(e) => Err(format!("{e:#}")),
            };
            match started {
                Ok(sb) if !self.stopped.load(Ordering::SeqCst) => lock(&self.idle).push(sb),
                Ok(_) => return,
                Err(e) => {
                    eprintln!(
                        "local-stack: {}: a new process failed to start: {e}",
                        self.spec().name
                    );
                    // Look again soon (the next round backs off further).
                    self.exited.notify_one();
                }
            }
        }
    }

    /// Invokes the function with `payload` on an idle process (or a new one, within the limit).
    /// Bounded: waiting for a free slot aside, at most the init limit plus the function's
    /// `Timeout`; a process that dies or overruns is discarded (and killed) and the supervisor
    /// replaces it.
    pub async fn invoke(&self, payload: Bytes) -> Invoked {
        self.invoke_traced(payload, new_trace_header()).await
    }

    /// [`FunctionPool::invoke`] continuing the trace of `trace_header`, as Lambda does for a
    /// request API Gateway traced.
    pub async fn invoke_traced(&self, payload: Bytes, trace_header: String) -> Invoked {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let Ok(permit) = self.permits.acquire().await else {
            return Invoked {
                request_id,
                trace_header,
                outcome: Outcome::InitFailed("function pool closed".into()),
                duration: started.elapsed(),
            };
        };
        self.prune_idle();
        let reused = lock(&self.idle).pop();
        let sb = match reused {
            Some(sb) => sb,
            None => match self.start_sandbox().await {
                Ok(sb) => sb,
                Err(e) => {
                    self.exited.notify_one();
                    return Invoked {
                        request_id,
                        trace_header,
                        outcome: Outcome::InitFailed(format!("{e:#}")),
                        duration: started.elapsed(),
                    };
                }
            },
        };
        let timeout = Duration::from_secs(self.launch.spec.timeout_s);
        let outcome = sb
            .invoke(&request_id, &trace_header, payload, timeout)
            .await;
        match &outcome {
            Outcome::Response(_) | Outcome::FunctionError { .. } if sb.alive() => {
                if sb.generation == *lock(&self.generation) {
                    lock(&self.idle).push(sb);
                }
            }
            other => {
                eprintln!(
                    "local-stack: {}: process {} {}; replacing it",
                    self.spec().name,
                    sb.pid_text(),
                    match other {
                        Outcome::TimedOut(d) => format!("timed out after {}s, killed", d.as_secs()),
                        Outcome::InitFailed(m) => format!("failed to start ({m}), killed"),
                        Outcome::Crashed(how) => format!("died during an invocation ({how})"),
                        _ => "died after its invocation".to_owned(),
                    }
                );
                drop(sb);
                drop(permit);
                self.exited.notify_one();
            }
        }
        Invoked {
            request_id,
            trace_header,
            outcome,
            duration: started.elapsed(),
        }
    }
}
