//! A minimal Lambda Runtime API for one process, instrumented for timing: it records when the
//! process first polls `/2018-06-01/runtime/invocation/next` (the end of init) and when each
//! invocation's response or error arrives.
//!
//! `local_stack::runtime` runs pools of sandboxes for the local stack; this one runs exactly
//! one process and one invocation at a time, so that its timestamps are the process's, with
//! nothing else (log piping, pools, restarts) in between.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How a function process is started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment (plus `PATH`); `AWS_LAMBDA_RUNTIME_API` is added.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// Where the process's stdout and stderr go.
    pub log_file: PathBuf,
}

/// What one invocation ended with, and when.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// From handing the event to the waiting `/next` to the response (or error) arriving.
    pub latency: Duration,
    /// The response body, or the function error (`errorType: errorMessage`).
    pub result: Result<Bytes, String>,
}

/// When an answer arrived, and what it was.
type Answer = (Instant, Result<Bytes, String>);

#[derive(Debug)]
struct Invocation {
    request_id: String,
    payload: Bytes,
    done: oneshot::Sender<Answer>,
}

#[derive(Debug)]
struct Endpoint {
    first_next: watch::Sender<Option<Instant>>,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<BTreeMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn next(State(ep): State<Arc<Endpoint>>) -> Response {
    let now = Instant::now();
    ep.first_next.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(now);
        }
        unset
    });
    let Some(inv) = ep.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    lock(&ep.pending).insert(inv.request_id.clone(), inv.done);
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", inv.request_id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, inv.payload).into_response()
}

fn finish(ep: &Endpoint, id: &str, result: Result<Bytes, String>) -> Response {
    let now = Instant::now();
    match lock(&ep.pending).remove(id) {
        Some(done) => {
            let _ = done.send((now, result));
            (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn response(
    State(ep): State<Arc<Endpoint>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&ep, &id, Ok(body))
}

fn describe_error(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|t| t.as_str()).unwrap_or("").to_owned();
    let (kind, message) = (field("errorType"), field("errorMessage"));
    if kind.is_empty() && message.is_empty() {
        String::from_utf8_lossy(body).into_owned()
    } else {
        format!("{kind}: {message}")
    }
}

async fn error(State(ep): State<Arc<Endpoint>>, Path(id): Path<String>, body: Bytes) -> Response {
    finish(&ep, &id, Err(describe_error(&body)))
}

async fn init_error(State(ep): State<Arc<Endpoint>>, body: Bytes) -> Response {
    *lock(&ep.init_error) = Some(describe_error(&body));
    (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
}

/// One function process and its Runtime API endpoint; the process is killed on drop.
#[derive(Debug)]
pub struct Sandbox {
    ep: Arc<Endpoint>,
    tx: mpsc::Sender<Invocation>,
    child: Child,
    server: JoinHandle<()>,
    spawned: Instant,
    invocations: u64,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.child.start_kill();
    }
}

impl Sandbox {
    /// Starts the endpoint, then the process; the clock of [`Sandbox::init`] starts right
    /// before the process is spawned.
    pub async fn spawn(launch: &Launch) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let (first_next, _) = watch::channel(None);
        let ep = Arc::new(Endpoint {
            first_next,
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::default(),
            init_error: Mutex::default(),
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
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_file)
            .with_context(|| format!("opening {}", launch.log_file.display()))?;
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args)
            .env_clear()
            .envs(std::env::var("PATH").map(|p| ("PATH".to_owned(), p)))
            .envs(&launch.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(dir) = &launch.cwd {
            cmd.current_dir(dir);
        }
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        Ok(Self {
            ep,
            tx,
            child,
            server,
            spawned,
            invocations: 0,
        })
    }

    /// Waits for the first `/next`: the time from spawn to it is the init duration.
    pub async fn init(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let mut rx = self.ep.first_next.subscribe();
        tokio::select! {
            first = rx.wait_for(Option::is_some) => {
                let at = first.map_err(|e| anyhow!("{e}"))?.ok_or_else(|| anyhow!("no /next"))?;
                Ok(at - self.spawned)
            }
            status = self.child.wait() => {
                let reason = lock(&self.ep.init_error).clone();
                bail!("process exited during init ({}){}", status.map(|s| s.to_string()).unwrap_or_default(),
                    reason.map(|r| format!(": {r}")).unwrap_or_default())
            }
            () = tokio::time::sleep(limit) => bail!("no /next within {}s", limit.as_secs()),
        }
    }

    /// Hands `payload` to the process's waiting `/next` and waits for its answer.
    pub async fn invoke(&mut self, payload: Bytes, limit: Duration) -> anyhow::Result<Invoked> {
        self.invocations += 1;
        let (done, answer) = oneshot::channel();
        let invocation = Invocation {
            request_id: format!(
                "bench-{}-{}",
                self.spawned.elapsed().as_nanos(),
                self.invocations
            ),
            payload,
            done,
        };
        let sent = Instant::now();
        self.tx
            .send(invocation)
            .await
            .map_err(|_| anyhow!("runtime endpoint closed"))?;
        tokio::select! {
            answer = answer => {
                let (at, result) = answer.map_err(|_| anyhow!("runtime endpoint closed"))?;
                Ok(Invoked { latency: at - sent, result })
            }
            status = self.child.wait() => bail!("process exited during the invocation ({})",
                status.map(|s| s.to_string()).unwrap_or_default()),
            () = tokio::time::sleep(limit) => bail!("no answer within {}s", limit.as_secs()),
        }
    }

    /// The process's peak resident set size (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().find_map(|line| {
            line.strip_prefix("VmHWM:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    }
}
