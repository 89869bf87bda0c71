//! Business and technical metrics as CloudWatch Embedded Metric Format (EMF) log lines:
//! CloudWatch extracts them from the function's logs, so no API call is made at run time.

use std::{io::Write, time::Duration};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric the application emits.
pub const NAMESPACE: &str = "ServerlessRustShop";

/// The unit of a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: &'static str,
    unit: Unit,
    value: f64,
}

impl Metric {
    /// A count, e.g. `Metric::count("OrderPlaced", 1)`.
    pub fn count(name: &'static str, value: u32) -> Self {
        Metric {
            name,
            unit: Unit::Count,
            value: f64::from(value),
        }
    }

    /// A duration, recorded in milliseconds.
    pub fn duration(name: &'static str, value: Duration) -> Self {
        Metric {
            name,
            unit: Unit::Milliseconds,
            value: value.as_secs_f64() * 1000.0,
        }
    }
}

/// The dimension names of the per-version set (see [`emit_per_version`]).
pub const FUNCTION_DIMENSION: &str = "function";
pub const VERSION_DIMENSION: &str = "version";

/// The Lambda function and version this process runs as, from Lambda's
/// `AWS_LAMBDA_FUNCTION_NAME` and `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST` when invoked
/// unqualified, the version number when invoked through an alias such as `live`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionVersion {
    pub function: String,
    pub version: String,
}

impl FunctionVersion {
    /// This process's function and version, or `None` outside Lambda.
    pub fn current() -> Option<&'static FunctionVersion> {
        static CURRENT: std::sync::OnceLock<Option<FunctionVersion>> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok()?;
                let version = std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
                    .unwrap_or_else(|_| "$LATEST".into());
                Some(FunctionVersion { function, version })
            })
            .as_ref()
    }
}

/// Renders one EMF document: the `service` dimension plus `dimensions`, and `metrics`.
pub fn render(service: &str, dimensions: &[(&str, &str)], metrics: &[Metric]) -> Value {
    document(service, dimensions, None, metrics)
}

/// Renders one EMF document whose metrics are recorded twice: per `service`, and per
/// `function` and `version`, so that an alarm can watch only the version being deployed.
pub fn render_per_version(service: &str, running: &FunctionVersion, metrics: &[Metric]) -> Value {
    document(service, &[], Some(running), metrics)
}

fn document(
    service: &str,
    dimensions: &[(&str, &str)],
    running: Option<&FunctionVersion>,
    metrics: &[Metric],
) -> Value {
    let mut doc = Map::new();
    let mut dimension_names = vec![Value::from("service")];
    doc.insert("service".into(), service.into());
    for (name, value) in dimensions {
        dimension_names.push((*name).into());
        doc.insert((*name).into(), (*value).into());
    }
    let mut dimension_sets = vec![Value::from(dimension_names)];
    if let Some(running) = running {
        doc.insert(FUNCTION_DIMENSION.into(), running.function.as_str().into());
        doc.insert(VERSION_DIMENSION.into(), running.version.as_str().into());
        dimension_sets.push(json!([FUNCTION_DIMENSION, VERSION_DIMENSION]));
    }
    for metric in metrics {
        doc.insert(metric.name.into(), metric.value.into());
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(doc)
}

/// Writes one EMF line to stdout, where Lambda's log capture picks it up. Outside a Lambda
/// environment (tests) it stays quiet unless `TEST_LOG` is set.
pub fn emit(service: &str, dimensions: &[(&str, &str)], metrics: &[Metric]) {
    #[cfg(test)]
    if capture::record(|_, level| stamp(render(service, dimensions, metrics), level)) {
        return;
    }
    write(render(service, dimensions, metrics));
}

/// Like [`emit`], for the counts that tell whether a function works (responses and 5xx,
/// messages failed, events not published): in Lambda they are also recorded per function and
/// version, which is what a deployment's rollback alarm watches.
pub fn emit_per_version(service: &str, metrics: &[Metric]) {
    #[cfg(test)]
    if capture::record(|running, level| stamp(render_per_version(service, running, metrics), level))
    {
        return;
    }
    match FunctionVersion::current() {
        Some(running) => write(render_per_version(service, running, metrics)),
        None => write(render(service, &[], metrics)),
    }
}

/// The level an EMF line is logged at for a function whose application log level is
/// `application_level` (`AWS_LAMBDA_LOG_LEVEL`): never below it, so Lambda's log-level
/// filter, which treats a line without a level as INFO, cannot drop a metric when the level
/// is raised to WARN or ERROR.
fn emf_level(application_level: Option<&str>) -> &'static str {
    match application_level.map(str::to_ascii_uppercase).as_deref() {
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

/// `doc` with the `level` ([`emf_level`]) and the RFC 3339 `timestamp` Lambda needs to
/// honour that level.
fn stamp(mut doc: Value, application_level: Option<&str>) -> Value {
    if let Value::Object(fields) = &mut doc {
        fields.insert("level".into(), emf_level(application_level).into());
        fields.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
    }
    doc
}

fn write(doc: Value) {
    static LEVEL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled = *ENABLED.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || std::env::var_os("TEST_LOG").is_some()
    });
    if !enabled {
        return;
    }
    let level = LEVEL.get_or_init(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok());
    let line = stamp(doc, level.as_deref());
    let mut out = std::io::stdout().lock();
    // A metric must never fail the invocation: a closed stdout only loses the metric.
    let _ = writeln!(out, "{line}");
}

/// For kit's unit tests: the EMF documents emitted on this thread, rendered as if the process
/// ran as a given function version.
#[cfg(test)]
pub(crate) mod capture {
    use std::cell::RefCell;

    use serde_json::Value;

    use super::FunctionVersion;

    type Captured = (FunctionVersion, Option<String>, Vec<Value>);

    thread_local! {
        static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
    }

    /// Starts capturing on this thread, as `function` version `version` whose application
    /// log level is `level`.
    pub(crate) fn start_at_level(function: &str, version: &str, level: &str) {
        let running = FunctionVersion {
            function: function.into(),
            version: version.into(),
        };
        CAPTURE.with(|c| *c.borrow_mut() = Some((running, Some(level.into()), Vec::new())));
    }

    /// Starts capturing on this thread, as `function` version `version` (level unset).
    pub(crate) fn start(function: &str, version: &str) {
        let running = FunctionVersion {
            function: function.into(),
            version: version.into(),
        };
        CAPTURE.with(|c| *c.borrow_mut() = Some((running, None, Vec::new())));
    }

    /// Stops capturing; the documents emitted since [`start`].
    pub(crate) fn take() -> Vec<Value> {
        CAPTURE.with(|c| {
            c.borrow_mut()
                .take()
                .map(|(_, _, docs)| docs)
                .unwrap_or_default()
        })
    }

    /// Records the document `render` makes when capturing; whether it did.
    pub(crate) fn record(render: impl FnOnce(&FunctionVersion, Option<&str>) -> Value) -> bool {
        CAPTURE.with(|c| match c.borrow_mut().as_mut() {
            Some((running, level, docs)) => {
                let doc = render(running, level.as_deref());
                docs.push(doc);
                true
            }
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_declares_every_metric_and_dimension() {
        let doc = render(
            "orders",
            &[("event_type", "OrderPlaced")],
            &[
                Metric::count("EventsPublished", 3),
                Metric::duration("PublishLatency", Duration::from_millis(12)),
            ],
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["service", "event_type"]]));
        assert_eq!(
            directive["Metrics"][0],
            json!({"Name": "EventsPublished", "Unit": "Count"})
        );
        assert_eq!(directive["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(doc["EventsPublished"], 3.0);
        assert_eq!(doc["PublishLatency"], 12.0);
        assert_eq!(doc["service"], "orders");
        assert_eq!(doc["event_type"], "OrderPlaced");
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 0);
    }

    #[test]
    fn a_per_version_document_adds_the_function_and_version_dimension_set() {
        let running = FunctionVersion {
            function: "shop-dev-orders-http".into(),
            version: "7".into(),
        };
        let doc = render_per_version("orders", &running, &[Metric::count("Responses5xx", 1)]);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Dimensions"],
            json!([["service"], ["function", "version"]])
        );
        assert_eq!(doc["function"], "shop-dev-orders-http");
        assert_eq!(doc["version"], "7");
        assert_eq!(doc["Responses5xx"], 1.0);
    }

    /// Lambda's log-level filter, as documented: a JSON line's `level` counts only with a
    /// valid RFC 3339 `timestamp`; without either the line is INFO. A line passes when its
    /// level is at least the function's application log level.
    fn passes_lambda_filter(line: &Value, application_level: &str) -> bool {
        const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let rank = |level: &str| ORDER.iter().position(|l| l.eq_ignore_ascii_case(level));
        let timestamp_ok = line["timestamp"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
        let level = match line["level"].as_str() {
            Some(level) if timestamp_ok && rank(level).is_some() => level,
            _ => "INFO",
        };
        rank(level) >= rank(application_level)
    }

    #[test]
    fn an_emf_line_passes_lambdas_log_level_filter_whatever_the_application_level() {
        for application_level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
            capture::start_at_level("shop-dev-orders-http", "3", application_level);
            emit("orders", &[], &[Metric::count("OrderPlaced", 1)]);
            let lines = capture::take();
            assert_eq!(lines.len(), 1);
            assert!(
                passes_lambda_filter(&lines[0], application_level),
                "dropped at application level {application_level}: {}",
                lines[0]
            );
        }
    }
}
