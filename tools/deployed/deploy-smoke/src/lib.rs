//! The CodeDeploy `PreTraffic` hook: before any traffic moves to a new function version,
//! invoke that version with a cheap smoke event, judge the response and report `Succeeded`
//! or `Failed` to CodeDeploy — always exactly once per invocation, whatever went wrong.
//!
//! The logic ([`handle`]) sees AWS only through three narrow ports ([`ports`]), so it is
//! tested with fakes; [`adapters`] holds the SDK implementations.

pub mod adapters;
pub mod appspec;
pub mod config;
pub mod ports;
pub mod smoke;

use kit::error::{EventError, cause_chain};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

pub use config::Config;
use ports::{CallError, Deployments, Invoker, Reporter, Status};
use smoke::{Rejection, SmokeEvents};

/// The event CodeDeploy invokes a lifecycle hook with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookEvent {
    #[serde(rename = "DeploymentId")]
    pub deployment_id: String,
    #[serde(rename = "LifecycleEventHookExecutionId")]
    pub execution_id: String,
}

/// What the hook returns to its caller once it has reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
}

/// Why a deployment failed its smoke test; the verdict is then `Failed`.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("could not read deployment {deployment_id}")]
    Deployment {
        deployment_id: String,
        #[source]
        source: CallError,
    },
    #[error("the AppSpec of deployment {deployment_id} is unusable")]
    AppSpec {
        deployment_id: String,
        #[source]
        source: appspec::AppSpecError,
    },
    #[error("no smoke rule for {function}: its name ends in none of -http, -events, -relay")]
    UnknownKind { function: String },
    #[error("SMOKE_EVENTS has no event for {function}")]
    NoSmokeEvent { function: String },
    #[error("invoking {function}:{version} failed")]
    Invoke {
        function: String,
        version: String,
        #[source]
        source: CallError,
    },
    #[error("{function}:{version} failed the smoke test")]
    Rejected {
        function: String,
        version: String,
        #[source]
        source: Rejection,
    },
}

/// Smoke-tests the deployment of `event` and reports the verdict exactly once. The only
/// error is a failed report: the verdict could not be delivered, so the invocation fails
/// (an asynchronous invocation is then retried by Lambda).
pub async fn handle<D, I, R>(
    event: &HookEvent,
    smoke: &SmokeEvents,
    deployments: &D,
    invoker: &I,
    reporter: &R,
) -> Result<Outcome, CallError>
where
    D: Deployments,
    I: Invoker,
    R: Reporter,
{
    let deployment_id = event.deployment_id.as_str();
    let status = match smoke_test(deployment_id, smoke, deployments, invoker).await {
        Ok(()) => {
            tracing::info!(deployment_id, status = ?Status::Succeeded, "smoke test passed");
            Status::Succeeded
        }
        Err(error) => {
            tracing::error!(
                deployment_id,
                status = ?Status::Failed,
                error.cause_chain = %cause_chain(&error),
                "smoke test failed"
            );
            Status::Failed
        }
    };
    reporter
        .report(deployment_id, &event.execution_id, status)
        .await
        .inspect_err(|error| {
            tracing::error!(
                deployment_id,
                status = ?status,
                error.cause_chain = %cause_chain(error),
                "could not report the verdict to CodeDeploy"
            );
        })?;
    Ok(Outcome { status })
}

/// Invokes the target version of every function the deployment moves; `Ok` only if all pass.
async fn smoke_test<D: Deployments, I: Invoker>(
    deployment_id: &str,
    smoke: &SmokeEvents,
    deployments: &D,
    invoker: &I,
) -> Result<(), SmokeError> {
    let content = deployments
        .app_spec(deployment_id)
        .await
        .map_err(|source| SmokeError::Deployment {
            deployment_id: deployment_id.to_owned(),
            source,
        })?;
    let targets = appspec::targets(&content).map_err(|source| SmokeError::AppSpec {
        deployment_id: deployment_id.to_owned(),
        source,
    })?;
    for target in targets {
        let function = target.name;
        let version = target.version;
        let Some(kind) = smoke::Kind::of(&function) else {
            return Err(SmokeError::UnknownKind { function });
        };
        let Some(payload) = smoke.for_function(&function) else {
            return Err(SmokeError::NoSmokeEvent { function });
        };
        let invocation = match invoker.invoke(&function, &version, payload).await {
            Ok(invocation) => invocation,
            Err(source) => {
                return Err(SmokeError::Invoke {
                    function,
                    version,
                    source,
                });
            }
        };
        if let Err(source) = smoke::judge(kind, &invocation) {
            return Err(SmokeError::Rejected {
                function,
                version,
                source,
            });
        }
        tracing::info!(
            deployment_id,
            function,
            version,
            alias = target.alias,
            "new version passed its smoke test"
        );
    }
    Ok(())
}

/// Serves the hook as a Lambda function.
pub async fn run<D, I, R>(
    config: Config,
    deployments: D,
    invoker: I,
    reporter: R,
) -> Result<(), lambda_runtime::Error>
where
    D: Deployments,
    I: Invoker,
    R: Reporter,
{
    let (config, deployments, invoker, reporter) = (&config, &deployments, &invoker, &reporter);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HookEvent>| {
        kit::telemetry::invocation(
            &event.context.request_id,
            event.context.xray_trace_id.as_deref(),
            async move {
                handle(
                    &event.payload,
                    &config.smoke_events,
                    deployments,
                    invoker,
                    reporter,
                )
                .await
                .map_err(|error| EventError::Dependency(Box::new(error)))
            },
        )
    }))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::Invocation;

    const APP_SPEC: &str = r#"{"version":0.0,"Resources":[{"Fn":{"Type":"AWS::Lambda::Function","Properties":{"Name":"shop-dev-orders-http","Alias":"live","CurrentVersion":"6","TargetVersion":"7"}}}]}"#;
    const SMOKE_EVENTS: &str =
        r#"{"http":{"rawPath":"/v1/orders"},"events":{"Records":[]},"relay":{"Records":[]}}"#;

    fn app_spec_for(function: &str) -> String {
        APP_SPEC.replace("shop-dev-orders-http", function)
    }

    /// Answers `GetDeployment` with a fixed AppSpec, or fails.
    struct FakeDeployments(Option<String>);

    impl Deployments for FakeDeployments {
        async fn app_spec(&self, _deployment_id: &str) -> Result<String, CallError> {
            self.0
                .clone()
                .ok_or_else(|| CallError::new("codedeploy:GetDeployment", "access denied"))
        }
    }

    /// Answers every invocation the same way and records the calls.
    struct FakeInvoker {
        answer: Option<Invocation>,
        calls: Mutex<Vec<(String, String, Vec<u8>)>>,
    }

    impl FakeInvoker {
        fn returning(payload: &str) -> Self {
            Self::answering(Some(Invocation {
                function_error: None,
                payload: payload.as_bytes().to_vec(),
            }))
        }

        fn answering(answer: Option<Invocation>) -> Self {
            FakeInvoker {
                answer,
                calls: Mutex::default(),
            }
        }
    }

    impl Invoker for FakeInvoker {
        async fn invoke(
            &self,
            function: &str,
            version: &str,
            payload: &[u8],
        ) -> Result<Invocation, CallError> {
            self.calls.lock().unwrap().push((
                function.to_owned(),
                version.to_owned(),
                payload.to_vec(),
            ));
            self.answer
                .clone()
                .ok_or_else(|| CallError::new("lambda:InvokeFunction", "TooManyRequestsException"))
        }
    }

    /// Records every report; fails them all when `broken`.
    #[derive(Default)]
    struct FakeReporter {
        broken: bool,
        reports: Mutex<Vec<(String, String, Status)>>,
    }

    impl Reporter for FakeReporter {
        async fn report(
            &self,
            deployment_id: &str,
            execution_id: &str,
            status: Status,
        ) -> Result<(), CallError> {
            self.reports.lock().unwrap().push((
                deployment_id.to_owned(),
                execution_id.to_owned(),
                status,
            ));
            if self.broken {
                return Err(CallError::new(
                    "codedeploy:PutLifecycleEventHookExecutionStatus",
                    "throttled",
                ));
            }
            Ok(())
        }
    }

    fn hook_event() -> HookEvent {
        serde_json::from_str(include_str!("../tests/fixtures/codedeploy-hook-event.json")).unwrap()
    }

    /// Runs the hook for a deployment of `function` against `invoker`; returns the single
    /// status reported (and fails the test unless exactly one report was sent).
    async fn verdict(deployments: FakeDeployments, invoker: &FakeInvoker) -> Status {
        kit::telemetry::init_for_tests();
        let smoke = SmokeEvents::parse(SMOKE_EVENTS).unwrap();
        let reporter = FakeReporter::default();
        let event = hook_event();
        let outcome = handle(&event, &smoke, &deployments, invoker, &reporter)
            .await
            .unwrap();
        let reports = reporter.reports.into_inner().unwrap();
        assert_eq!(reports.len(), 1, "exactly one report: {reports:?}");
        let (deployment_id, execution_id, status) = reports[0].clone();
        assert_eq!(deployment_id, event.deployment_id);
        assert_eq!(execution_id, event.execution_id);
        assert_eq!(outcome.status, status);
        status
    }

    fn deployment_of(function: &str) -> FakeDeployments {
        FakeDeployments(Some(app_spec_for(function)))
    }

    #[test]
    fn the_fixture_is_a_codedeploy_hook_event() {
        let event = hook_event();
        assert_eq!(event.deployment_id, "d-ABCDEF123");
        assert!(!event.execution_id.is_empty());
    }

    #[tokio::test]
    async fn a_healthy_http_version_is_reported_succeeded() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":200,"body":"{\"orders\":[]}"}"#);
        let status = verdict(deployment_of("shop-dev-orders-http"), &invoker).await;
        assert_eq!(status, Status::Succeeded);
        let calls = invoker.calls.into_inner().unwrap();
        assert_eq!(
            calls,
            vec![(
                "shop-dev-orders-http".to_owned(),
                "7".to_owned(),
                br#"{"rawPath":"/v1/orders"}"#.to_vec()
            )],
            "the new version, not the alias, gets the http smoke event"
        );
    }

    #[tokio::test]
    async fn an_http_version_answering_401_is_reported_succeeded() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":401}"#);
        let status = verdict(deployment_of("shop-dev-orders-http"), &invoker).await;
        assert_eq!(status, Status::Succeeded);
    }

    #[tokio::test]
    async fn a_consumer_returning_no_item_failures_is_reported_succeeded() {
        let invoker = FakeInvoker::returning(r#"{"batchItemFailures":[]}"#);
        let status = verdict(deployment_of("shop-dev-payments-events"), &invoker).await;
        assert_eq!(status, Status::Succeeded);
        let calls = invoker.calls.into_inner().unwrap();
        assert_eq!(calls[0].2, br#"{"Records":[]}"#.to_vec());
    }

    #[tokio::test]
    async fn a_function_error_is_reported_failed() {
        let invoker = FakeInvoker::answering(Some(Invocation {
            function_error: Some("Unhandled".into()),
            payload: br#"{"errorType":"Runtime.ExitError"}"#.to_vec(),
        }));
        let status = verdict(deployment_of("shop-dev-orders-http"), &invoker).await;
        assert_eq!(status, Status::Failed);
    }

    #[tokio::test]
    async fn a_5xx_status_is_reported_failed() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":500,"body":"internal error"}"#);
        let status = verdict(deployment_of("shop-dev-orders-http"), &invoker).await;
        assert_eq!(status, Status::Failed);
    }

    #[tokio::test]
    async fn batch_item_failures_on_an_empty_batch_are_reported_failed() {
        let invoker = FakeInvoker::returning(r#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#);
        let status = verdict(deployment_of("shop-dev-notify-relay"), &invoker).await;
        assert_eq!(status, Status::Failed);
    }

    #[tokio::test]
    async fn an_invoke_error_is_reported_failed() {
        let invoker = FakeInvoker::answering(None);
        let status = verdict(deployment_of("shop-dev-orders-events"), &invoker).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(invoker.calls.into_inner().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unreadable_deployment_is_reported_failed_without_invoking() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":200}"#);
        let status = verdict(FakeDeployments(None), &invoker).await;
        assert_eq!(status, Status::Failed);
        assert!(invoker.calls.into_inner().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unusable_appspec_is_reported_failed() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":200}"#);
        let status = verdict(FakeDeployments(Some("{".into())), &invoker).await;
        assert_eq!(status, Status::Failed);
    }

    #[tokio::test]
    async fn a_function_without_a_smoke_rule_is_reported_failed() {
        let invoker = FakeInvoker::returning(r#"{"statusCode":200}"#);
        let status = verdict(deployment_of("shop-dev-orders-cron"), &invoker).await;
        assert_eq!(status, Status::Failed);
        assert!(invoker.calls.into_inner().unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_function_of_a_deployment_must_pass() {
        let two = r#"{"version":0.0,"Resources":[{"A":{"Type":"AWS::Lambda::Function","Properties":{"Name":"shop-dev-orders-http","Alias":"live","TargetVersion":"7"}}},{"B":{"Type":"AWS::Lambda::Function","Properties":{"Name":"shop-dev-orders-relay","Alias":"live","TargetVersion":"3"}}}]}"#;
        // An http response is not a batch response, so the relay fails.
        let invoker = FakeInvoker::returning(r#"{"statusCode":200}"#);
        let status = verdict(FakeDeployments(Some(two.into())), &invoker).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(invoker.calls.into_inner().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_report_fails_the_invocation_after_one_attempt() {
        let smoke = SmokeEvents::parse(SMOKE_EVENTS).unwrap();
        let reporter = FakeReporter {
            broken: true,
            ..FakeReporter::default()
        };
        let invoker = FakeInvoker::returning(r#"{"statusCode":200}"#);
        let result = handle(
            &hook_event(),
            &smoke,
            &deployment_of("shop-dev-orders-http"),
            &invoker,
            &reporter,
        )
        .await;
        assert!(result.is_err());
        assert_eq!(reporter.reports.into_inner().unwrap().len(), 1);
    }
}
