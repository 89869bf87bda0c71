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

/// Renders one EMF document: the `service` dimension plus `dimensions`, and `metrics`.
pub fn render(service: &str, dimensions: &[(&str, &str)], metrics: &[Metric]) -> Value {
    let mut doc = Map::new();
    let mut dimension_names = vec![Value::from("service")];
    doc.insert("service".into(), service.into());
    for (name, value) in dimensions {
        dimension_names.push((*name).into());
        doc.insert((*name).into(), (*value).into());
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
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(doc)
}

/// Writes one EMF line to stdout, where Lambda's log capture picks it up. Outside a Lambda
/// environment (tests) it stays quiet unless `TEST_LOG` is set.
pub fn emit(service: &str, dimensions: &[(&str, &str)], metrics: &[Metric]) {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled = *ENABLED.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || std::env::var_os("TEST_LOG").is_some()
    });
    if !enabled {
        return;
    }
    let line = render(service, dimensions, metrics);
    let mut out = std::io::stdout().lock();
    // A metric must never fail the invocation: a closed stdout only loses the metric.
    let _ = writeln!(out, "{line}");
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
}
