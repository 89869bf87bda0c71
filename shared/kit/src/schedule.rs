//! Functions run on a schedule (an EventBridge schedule rule): the payload is the
//! "Scheduled Event", which carries nothing the job needs, so the job is a plain async
//! function of the time; its failure is reported to Lambda (and so to the Errors alarm).

use std::{error::Error as StdError, future::Future};

use chrono::{DateTime, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;

use crate::{error::EventError, telemetry};

/// Serves `job` as a scheduled Lambda function of `service`: each invocation runs it once with
/// the current time and returns what it reports.
pub async fn run<F, Fut, T, E>(service: &'static str, job: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: Serialize,
    E: StdError + Send + Sync + 'static,
{
    let job = &job;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        telemetry::invocation(
            &event.context.request_id,
            event.context.xray_trace_id.as_deref(),
            async move {
                tracing::debug!(service, "scheduled run");
                job(Utc::now())
                    .await
                    .map_err(|error| EventError::Dependency(Box::new(error)))
            },
        )
    }))
    .await
}
