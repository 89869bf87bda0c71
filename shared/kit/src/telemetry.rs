//! Logging: one call sets up JSON logs that follow Lambda's `AWS_LAMBDA_LOG_LEVEL` and
//! `AWS_LAMBDA_LOG_FORMAT`, with the fields of the current invocation (service, request id,
//! cold start, correlation id, message id) flattened onto every line.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::{Map, Value};
use tracing::{Event, Span, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{JsonFields, Writer},
    },
    registry::LookupSpan,
};

static SERVICE: OnceLock<&'static str> = OnceLock::new();
static COLD_START: AtomicBool = AtomicBool::new(true);

/// Noisy dependencies stay at `warn` whatever the function's level.
const QUIET_DEPENDENCIES: &str = "aws_config=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,hyper=warn,hyper_util=warn,h2=warn,rustls=warn";

/// Initialises logging for a Lambda function of `service`. Call once, first thing in `main`.
pub fn init(service: &'static str) {
    let _ = SERVICE.set(service);
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

/// The span every invocation runs in; its fields appear on every log line inside it.
/// An HTTP invocation records its `correlation_id` later with [`record_correlation_id`]; an
/// SQS invocation runs each message in its own [`message_span`].
pub fn invocation_span(request_id: &str) -> Span {
    let cold_start = COLD_START.swap(false, Ordering::Relaxed);
    tracing::info_span!(
        "invocation",
        service = SERVICE.get().copied().unwrap_or("unknown"),
        request_id,
        cold_start,
        correlation_id = tracing::field::Empty,
    )
}

/// Records the correlation id on the current invocation span.
pub fn record_correlation_id(correlation_id: &str) {
    Span::current().record("correlation_id", correlation_id);
}

/// The span one message of a batch is handled in: its id and, when known, its correlation id
/// appear on every line logged about it — and nothing of the message handled before it.
pub fn message_span(message_id: &str, correlation_id: Option<&str>) -> Span {
    let span = tracing::info_span!(
        "message",
        message_id,
        correlation_id = tracing::field::Empty,
    );
    if let Some(id) = correlation_id {
        span.record("correlation_id", id);
    }
    span
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
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str(fields.as_str())
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
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
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
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

    #[test]
    fn every_line_inside_an_invocation_carries_its_fields() {
        let (subscriber, buffer) = test_log::subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = invocation_span("req-1");
            let _entered = span.enter();
            let message = message_span("msg-9", Some("corr-7"));
            let _message = message.enter();
            tracing::info!(order_id = "o-1", "order placed");
        });
        let line = buffer.lines().remove(0);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "order placed");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["correlation_id"], "corr-7");
        assert_eq!(line["message_id"], "msg-9");
        assert_eq!(line["order_id"], "o-1");
        assert!(line["cold_start"].is_boolean());
        assert!(line["service"].is_string());
    }
}
