//! An emulation of the Lambda Runtime API: each function process ("sandbox") gets its own
//! `AWS_LAMBDA_RUNTIME_API` endpoint serving `/2018-06-01/runtime/invocation/next`,
//! `/{id}/response`, `/{id}/error` and `/init/error`. A function has a pool of sandboxes, one
//! per concurrent invocation up to its limit. A sandbox whose process crashes or overruns its
//! timeout is killed and restarted, and its invocation reported as an error, like Lambda does.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
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

/// One function process and its runtime API endpoint.
#[derive(Debug)]
struct Sandbox {
    ep: Arc<Endpoint>,
    child: Child,
    server: JoinHandle<()>,
    generation: u64,
    pid: Option<u32>,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(pid) = self.pid {
            lock(&self.pids).retain(|p| *p != pid);
        }
        let _ = self.child.start_kill();
    }
}

impl Sandbox {
    async fn start(
        launch: &Launch,
        extra_env: &BTreeMap<String, String>,
        generation: u64,
        pids: Arc<Mutex<Vec<u32>>>,
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
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", launch.executable.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_file)?;
        let log = Arc::new(Mutex::new(log));
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
        Ok(Self {
            ep,
            child,
            server,
            generation,
            pid,
            pids,
        })
    }

    /// Waits until the process polls `/next` for the first time.
    async fn ready(&mut self) -> Result<(), String> {
        let mut rx = self.ep.nexts.subscribe();
        let wait = rx.wait_for(|n| *n > 0);
        tokio::select! {
            r = wait => r.map(|_| ()).map_err(|e| e.to_string()),
            status = self.child.wait() => {
                let init = lock(&self.ep.init_error).clone();
                Err(init.unwrap_or_else(|| format!("process exited during init: {}", describe_exit(status))))
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => Err(format!("no /next within {}s", INIT_TIMEOUT.as_secs())),
        }
    }

    fn is_ready(&self) -> bool {
        *self.ep.nexts.borrow() > 0
    }

    async fn invoke(&mut self, request_id: &str, payload: Bytes, timeout: Duration) -> Outcome {
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
            trace_id: trace_id(),
        });
        self.ep.notify.notify_waiters();
        tokio::select! {
            r = rx => r.unwrap_or_else(|_| Outcome::Crashed("runtime endpoint closed".into())),
            status = self.child.wait() => Outcome::Crashed(describe_exit(status)),
            _ = tokio::time::sleep(timeout) => Outcome::TimedOut(timeout),
        }
    }

    /// Whether the process is still alive and usable.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

/// An X-Ray trace header for one invocation.
fn trace_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        chrono::Utc::now().timestamp(),
        &id[..24],
        &parent[..16]
    )
}

/// The sandboxes of one function.
#[derive(Debug)]
pub struct FunctionPool {
    launch: Launch,
    limit: usize,
    permits: Semaphore,
    idle: Mutex<Vec<Sandbox>>,
    extra_env: Mutex<BTreeMap<String, String>>,
    generation: Mutex<u64>,
    pids: Arc<Mutex<Vec<u32>>>,
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
        }
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

    /// Starts one process and waits until it polls for work.
    pub async fn warm(&self) -> anyhow::Result<()> {
        let generation = *lock(&self.generation);
        let extra = lock(&self.extra_env).clone();
        let mut sb = Sandbox::start(&self.launch, &extra, generation, self.pids.clone()).await?;
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

    /// Stops the idle processes; busy ones are stopped when their invocation ends. The next
    /// invocation starts a fresh process.
    pub fn restart(&self) {
        *lock(&self.generation) += 1;
        lock(&self.idle).clear();
    }

    /// Invokes the function with `payload` on an idle process (or a new one, within the limit).
    pub async fn invoke(&self, payload: Bytes) -> Invoked {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let Ok(_permit) = self.permits.acquire().await else {
            return Invoked {
                request_id,
                outcome: Outcome::InitFailed("function pool closed".into()),
                duration: started.elapsed(),
            };
        };
        let generation = *lock(&self.generation);
        let reused = {
            let mut idle = lock(&self.idle);
            idle.retain_mut(|s| s.generation == generation && s.alive());
            idle.pop()
        };
        let mut sb = match reused {
            Some(sb) => sb,
            None => {
                let extra = lock(&self.extra_env).clone();
                match Sandbox::start(&self.launch, &extra, generation, self.pids.clone()).await {
                    Ok(sb) => sb,
                    Err(e) => {
                        return Invoked {
                            request_id,
                            outcome: Outcome::InitFailed(format!("{e:#}")),
                            duration: started.elapsed(),
                        };
                    }
                }
            }
        };
        let timeout = Duration::from_secs(self.launch.spec.timeout_s);
        let outcome = sb.invoke(&request_id, payload, timeout).await;
        match outcome {
            Outcome::Response(_) | Outcome::FunctionError { .. } if sb.alive() => {
                if sb.generation == *lock(&self.generation) {
                    lock(&self.idle).push(sb);
                }
            }
            _ => {
                // Kill it now; a replacement starts in the background so the next invocation
                // finds a warm process, as after a Lambda sandbox reset.
                drop(sb);
                let extra = lock(&self.extra_env).clone();
                if let Ok(mut fresh) =
                    Sandbox::start(&self.launch, &extra, generation, self.pids.clone()).await
                    && fresh.ready().await.is_ok()
                {
                    lock(&self.idle).push(fresh);
                }
            }
        }
        Invoked {
            request_id,
            outcome,
            duration: started.elapsed(),
        }
    }
}
