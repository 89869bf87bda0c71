//! Logging and tracing context, Powertools-style: one call sets up JSON logs that follow
//! Lambda's `AWS_LAMBDA_LOG_LEVEL` and `AWS_LAMBDA_LOG_FORMAT`. Every line carries the
//! process's `service` and `function_version`; inside an invocation also `request_id`,
//! `cold_start` and `xray_trace_id`; inside a message of a batch its `message_id`, its own
//! `correlation_id` and its own `xray_trace_id` (the trace of the request that caused it).
//!
//! The X-Ray trace header travels with the work: [`invocation`] and [`message`] scope it, the
//! outbox stores [`trace_header`] with each event, the relay sends it as `PutEvents`'
//! `TraceHeader`, EventBridge hands it to SQS as `AWSTraceHeader`, and the consumer's
//! [`message`] scope picks it up again — one saga, one trace id, no collector.

use std::{
    fmt,
    future::Future,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use futures::FutureExt as _;
use serde_json::{Map, Value};
use tracing::{Event, Instrument, Span, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{JsonFields, Writer},
    },
    registry::LookupSpan,
};

use crate::metrics::{self, Metric};

/// What this process runs as; its fields are on every line.
#[derive(Debug)]
struct Process {
    service: &'static str,
    /// `AWS_LAMBDA_FUNCTION_NAME`, for the `ColdStart` metric's dimension.
    function_name: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST` when invoked unqualified).
    function_version: String,
    /// Whether init ran for provisioned concurrency (`AWS_LAMBDA_INITIALIZATION_TYPE`).
    provisioned: bool,
    first_invocation: AtomicBool,
}

impl Process {
    fn new(service: &'static str, env: impl Fn(&str) -> Option<String>) -> Self {
        Process {
            service,
            function_name: env("AWS_LAMBDA_FUNCTION_NAME"),
            function_version: env("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|| "$LATEST".into()),
            provisioned: env("AWS_LAMBDA_INITIALIZATION_TYPE")
                .is_some_and(|t| t == "provisioned-concurrency"),
            first_invocation: AtomicBool::new(true),
        }
    }

    /// Whether the invocation starting now is a cold start: the first of an on-demand
    /// sandbox. A provisioned sandbox ran its init ahead of any request, so none of its
    /// invocations waited for it. Counts a cold start in the `ColdStart` metric.
    fn begin_invocation(&self) -> bool {
        let cold = self.first_invocation.swap(false, Ordering::Relaxed) && !self.provisioned;
        if cold {
            let function = self.function_name.as_deref().unwrap_or("unknown");
            metrics::emit(
                self.service,
                &[("function_name", function)],
                &[Metric::count("ColdStart", 1)],
            );
        }
        cold
    }
}

static PROCESS: OnceLock<Process> = OnceLock::new();

fn process() -> &'static Process {
    PROCESS.get_or_init(|| Process::new("unknown", |name| std::env::var(name).ok()))
}

tokio::task_local! {
    /// The X-Ray trace header of the work being done: the invocation's, or the message's.
    static TRACE_HEADER: Option<String>;
}

/// Noisy dependencies stay at `warn` whatever the function's level.
const QUIET_DEPENDENCIES: &str = "aws_config=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_smithy_http_client=warn,aws_sdk_dynamodb=warn,aws_sdk_eventbridge=warn,hyper=warn,hyper_util=warn,h2=warn,rustls=warn";

/// Initialises logging for a Lambda function of `service`. Call once, first thing in `main`.
pub fn init(service: &'static str) {
    let _ = PROCESS.set(Process::new(service, |name| std::env::var(name).ok()));
    let filter = EnvFilter::new(format!("{},{QUIET_DEPENDENCIES}", level_from_env()));
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (e.g. two tests) keeps the first subscriber.
    let _ = if text {
        builder.compact().with_ansi(false).try_init()
    } else {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init()
    };
}

/// For tests: silent unless `TEST_LOG` is set, then the same JSON lines through the test writer.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(format!("debug,{QUIET_DEPENDENCIES}")))
        .with_test_writer()
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
        .try_init();
}

/// Runs `work`, one invocation, in its span (`request_id`, `cold_start`, `xray_trace_id`) and
/// with `trace_header` (Lambda's `Lambda-Runtime-Trace-Id`) as the current
/// [`trace_header`]. An HTTP invocation records its `correlation_id` with
/// [`record_correlation_id`]; a batch runs each message in [`message`].
pub fn invocation<F: Future>(
    request_id: &str,
    trace_header: Option<&str>,
    work: F,
) -> impl Future<Output = F::Output> + use<F> {
    let cold_start = process().begin_invocation();
    let span = tracing::info_span!(
        "invocation",
        request_id,
        cold_start,
        xray_trace_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
    );
    if let Some(root) = trace_header.and_then(trace_root) {
        span.record("xray_trace_id", root);
    }
    TRACE_HEADER.scope(trace_header.map(str::to_owned), work.instrument(span))
}

/// Records the correlation id on the current invocation span.
pub fn record_correlation_id(correlation_id: &str) {
    Span::current().record("correlation_id", correlation_id);
}

/// Runs `work`, the handling of one message of a batch, in its own span: its id and, when
/// known, its correlation id and trace appear on every line logged about it — and nothing of
/// the message handled before it. A message that carries a trace header (SQS
/// `AWSTraceHeader`) continues that trace: it is the current [`trace_header`] inside `work`,
/// so the events it causes join the same trace; without one it stays on the invocation's.
pub fn message<F: Future>(
    message_id: &str,
    correlation_id: Option<&str>,
    trace_header: Option<&str>,
    work: F,
) -> impl Future<Output = F::Output> + use<F> {
    let span = tracing::info_span!(
        "message",
        message_id,
        correlation_id = tracing::field::Empty,
        xray_trace_id = tracing::field::Empty,
    );
    if let Some(id) = correlation_id {
        span.record("correlation_id", id);
    }
    if let Some(root) = trace_header.and_then(trace_root) {
        span.record("xray_trace_id", root);
    }
    let header = trace_header.map(str::to_owned).or_else(self::trace_header);
    TRACE_HEADER.scope(header, work.instrument(span))
}

/// The X-Ray trace header of the work in progress (see [`invocation`] and [`message`]).
pub fn trace_header() -> Option<String> {
    TRACE_HEADER.try_with(Clone::clone).ok().flatten()
}

/// The trace id in an X-Ray trace header: `1-5759e988-bd862e3fe1be46a994272793` of
/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
pub fn trace_root(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .filter(|root| !root.is_empty())
}

/// A call to a dependency (a DynamoDB request, `PutEvents`, the payment provider) run as a
/// named step: `client.get_item()….send().step("dynamodb.GetItem").await`.
pub trait Step: Future + Sized {
    /// Runs `self` as the step `name`: at debug level its lines carry `step` and a closing
    /// line gives its `duration_ms`; above debug it costs a level check.
    fn step(self, name: &'static str) -> impl Future<Output = Self::Output> {
        step(name, self)
    }
}

impl<F: Future> Step for F {}

/// Built from combinators rather than an `async fn`, so a step adds a span and an instant to
/// the future it wraps instead of storing that future twice.
fn step<F: Future>(name: &'static str, work: F) -> impl Future<Output = F::Output> {
    let span = tracing::debug_span!("step", step = name);
    let started = (!span.is_disabled()).then(Instant::now);
    let closing = span.clone();
    work.instrument(span).inspect(move |_| {
        if let Some(started) = started {
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            closing.in_scope(|| tracing::debug!(duration_ms, "step finished"));
        }
    })
}

/// The `AWS_LAMBDA_LOG_LEVEL` mapped onto tracing levels (`FATAL` → `error`), else
/// `RUST_LOG`, else `info`.
fn level_from_env() -> String {
    match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) => match level.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            _ => "info",
        }
        .to_owned(),
        Err(_) => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
    }
}

/// One JSON object per line: timestamp, level, target, the fields of every enclosing span,
/// then the event's own fields (`message` included).
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let process = process();
        line.insert("service".into(), process.service.into());
        line.insert(
            "function_version".into(),
            process.function_version.as_str().into(),
        );
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str(fields.as_str())
                {
                    if span.metadata().target().starts_with("lambda_runtime") {
                        line.extend(runtime_fields(fields));
                    } else {
                        line.extend(fields);
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The fields of `lambda_runtime`'s own invocation span under our names (`requestId` →
/// `request_id`, `xrayTraceId` → `xray_trace_id` as its root), so a line has one request id
/// and one trace id, and ours — a message's trace — win where both are set.
fn runtime_fields(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|(name, value)| match name.as_str() {
            "requestId" => Some(("request_id".to_owned(), value)),
            "xrayTraceId" => value
                .as_str()
                .and_then(trace_root)
                .map(|root| ("xray_trace_id".to_owned(), Value::from(root))),
            _ => Some((name, value)),
        })
        .collect()
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Log lines captured in the production format, for tests of what the kit logs.
#[cfg(test)]
pub(crate) mod test_log {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::{MakeWriter, format::JsonFields};

    use super::FlatJson;

    #[derive(Clone, Default)]
    pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// Every line written so far, parsed.
        pub(crate) fn lines(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// A subscriber writing the kit's JSON lines into the returned buffer.
    pub(crate) fn subscriber() -> (impl tracing::Subscriber + Send + Sync, Buffer) {
        subscriber_at(tracing::Level::INFO)
    }

    /// [`subscriber`] at `level`.
    pub(crate) fn subscriber_at(
        level: tracing::Level,
    ) -> (impl tracing::Subscriber + Send + Sync, Buffer) {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(buffer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        (subscriber, buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOCATION_TRACE: &str =
        "Root=1-6a2b3c4d-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=1";
    const MESSAGE_TRACE: &str =
        "Root=1-6a2b3c4d-bbbbbbbbbbbbbbbbbbbbbbbb;Parent=2222222222222222;Sampled=1";

    #[tokio::test]
    async fn every_line_inside_an_invocation_carries_its_fields() {
        let (subscriber, buffer) = test_log::subscriber();
        let _default = tracing::subscriber::set_default(subscriber);
        invocation("req-1", Some(INVOCATION_TRACE), async {
            tracing::info!("batch received");
            message("msg-9", Some("corr-7"), Some(MESSAGE_TRACE), async {
                tracing::info!(order_id = "o-1", "order placed");
            })
            .await;
        })
        .await;
        let lines = buffer.lines();
        for line in &lines {
            assert_eq!(line["request_id"], "req-1");
            assert!(line["cold_start"].is_boolean(), "{line}");
            assert!(line["service"].is_string(), "{line}");
            assert!(line["function_version"].is_string(), "{line}");
        }
        assert_eq!(
            lines[0]["xray_trace_id"],
            "1-6a2b3c4d-aaaaaaaaaaaaaaaaaaaaaaaa"
        );
        let line = &lines[1];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "order placed");
        assert_eq!(line["correlation_id"], "corr-7");
        assert_eq!(line["message_id"], "msg-9");
        assert_eq!(line["order_id"], "o-1");
        assert_eq!(
            line["xray_trace_id"], "1-6a2b3c4d-bbbbbbbbbbbbbbbbbbbbbbbb",
            "a message's lines carry its own trace, not the batch invocation's"
        );
    }

    #[test]
    fn lambda_runtimes_own_span_fields_do_not_compete_with_ours() {
        let (subscriber, buffer) = test_log::subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tracing::info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = "req-1",
                xrayTraceId = INVOCATION_TRACE,
            );
            let _runtime = runtime.enter();
            tracing::info!("before our span");
            let message = tracing::info_span!(
                "message",
                xray_trace_id = "1-6a2b3c4d-bbbbbbbbbbbbbbbbbbbbbbbb"
            );
            let _message = message.enter();
            tracing::info!("inside a message");
        });
        let lines = buffer.lines();
        assert_eq!(lines[0]["request_id"], "req-1");
        assert_eq!(
            lines[0]["xray_trace_id"],
            "1-6a2b3c4d-aaaaaaaaaaaaaaaaaaaaaaaa"
        );
        assert!(lines[0].get("requestId").is_none() && lines[0].get("xrayTraceId").is_none());
        assert_eq!(
            lines[1]["xray_trace_id"],
            "1-6a2b3c4d-bbbbbbbbbbbbbbbbbbbbbbbb"
        );
        assert!(lines[1].get("xrayTraceId").is_none(), "{}", lines[1]);
    }

    #[tokio::test]
    async fn the_trace_header_of_the_work_is_the_messages_when_it_has_one_else_the_invocations() {
        invocation("req-1", Some(INVOCATION_TRACE), async {
            assert_eq!(trace_header().as_deref(), Some(INVOCATION_TRACE));
            message("m1", None, Some(MESSAGE_TRACE), async {
                assert_eq!(trace_header().as_deref(), Some(MESSAGE_TRACE));
            })
            .await;
            message("m2", None, None, async {
                assert_eq!(trace_header().as_deref(), Some(INVOCATION_TRACE));
            })
            .await;
        })
        .await;
        assert_eq!(trace_header(), None, "no trace outside an invocation");
    }

    #[test]
    fn the_trace_id_is_the_root_of_the_header() {
        assert_eq!(
            trace_root(INVOCATION_TRACE),
            Some("1-6a2b3c4d-aaaaaaaaaaaaaaaaaaaaaaaa")
        );
        assert_eq!(trace_root("Sampled=1;Root=1-a-b"), Some("1-a-b"));
        assert_eq!(trace_root("Parent=1;Sampled=0"), None);
        assert_eq!(trace_root("Root="), None);
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn only_the_first_invocation_of_an_on_demand_sandbox_is_a_cold_start_and_it_is_counted() {
        let process = Process::new(
            "orders",
            env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "shop-dev-orders-http"),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ]),
        );
        metrics::capture::start("shop-dev-orders-http", "1");
        assert!(process.begin_invocation());
        assert!(!process.begin_invocation());
        let docs = metrics::capture::take();
        assert_eq!(docs.len(), 1, "one ColdStart metric: {docs:?}");
        assert_eq!(docs[0]["ColdStart"], 1.0);
        assert_eq!(docs[0]["function_name"], "shop-dev-orders-http");
        assert_eq!(docs[0]["service"], "orders");
    }

    #[test]
    fn no_invocation_of_a_provisioned_sandbox_is_a_cold_start() {
        let process = Process::new(
            "orders",
            env(&[("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")]),
        );
        metrics::capture::start("f", "1");
        assert!(!process.begin_invocation(), "init ran before any request");
        assert!(!process.begin_invocation());
        assert!(metrics::capture::take().is_empty());
    }

    #[test]
    fn the_function_version_is_lambdas_or_latest() {
        let named = Process::new("orders", env(&[("AWS_LAMBDA_FUNCTION_VERSION", "7")]));
        assert_eq!(named.function_version, "7");
        assert_eq!(Process::new("orders", env(&[])).function_version, "$LATEST");
    }

    #[tokio::test]
    async fn a_step_logs_its_duration_at_debug_level_only() {
        let (subscriber, buffer) = test_log::subscriber_at(tracing::Level::DEBUG);
        let _default = tracing::subscriber::set_default(subscriber);
        let answer = async {
            tracing::debug!("inside");
            42
        }
        .step("dynamodb.GetItem")
        .await;
        assert_eq!(answer, 42);
        let lines = buffer.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["step"], "dynamodb.GetItem");
        assert_eq!(lines[1]["step"], "dynamodb.GetItem");
        assert_eq!(lines[1]["message"], "step finished");
        assert!(lines[1]["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
        assert_eq!(lines[1]["level"], "DEBUG");

        let (subscriber, buffer) = test_log::subscriber_at(tracing::Level::INFO);
        let _info = tracing::subscriber::set_default(subscriber);
        async {}.step("dynamodb.GetItem").await;
        assert!(buffer.lines().is_empty(), "nothing above debug level");
    }
}
