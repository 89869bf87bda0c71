//! The hook's smoke logic against the real functions: [`deploy_smoke::handle`] with its
//! `SMOKE_EVENTS` as the local stack resolves them from `infra/platform.yaml`, invoking the
//! real function binaries (against moto) through the local stack's runtime emulation.
//!
//! The local stack serves neither the Lambda Invoke API nor CodeDeploy, so the `Invoker` port
//! is implemented over `Stack::invoke` (one version per function: the `TargetVersion` is not
//! used) and the deployment and the verdict are fakes. The SDK adapters are not exercised.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Mutex;

use deploy_smoke::{
    HookEvent, config,
    ports::{CallError, Deployments, Invocation, Invoker, Reporter, Status},
};
use local_stack::{Options, Stack, runtime::Outcome};
use serde_json::json;

const HOOK: &str = "deploy-smoke";

/// Every function the hook guards: each service function that serves routes, a queue or a
/// stream, found in the stacks (a new service's included).
fn guarded() -> Vec<String> {
    let root = testkit::repo_root();
    let template = local_stack::stacks::load(&root).unwrap();
    let mut names: Vec<String> = testkit::template::template_functions(&template)
        .into_iter()
        .filter(|f| !(f.routes.is_empty() && f.sqs.is_empty() && f.streams.is_empty()))
        .map(|f| f.short_name)
        .collect();
    names.sort();
    names
}

/// The local stack running `functions` and the hook (no HTTP API, no event source mappings:
/// only direct invocations), on the test binary's moto with its own resource prefix.
async fn stack(functions: &[&str]) -> Stack {
    let root = testkit::repo_root();
    tokio::task::block_in_place(testkit::build_functions);
    let mut o = Options::new(root);
    o.build = false;
    o.aws_endpoint = Some(testkit::moto().endpoint.clone());
    o.prefix = Some(format!(
        "d{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    o.only = functions
        .iter()
        .chain(&[HOOK])
        .map(|f| (*f).to_owned())
        .collect();
    o.serve_http = false;
    o.run_mappings = false;
    o.echo_logs = std::env::var("TEST_LOG").is_ok();
    Stack::start(o).await.expect("the local stack starts")
}

/// `SMOKE_EVENTS` of the hook as the template gives it (`!Sub` resolved by the local stack).
fn smoke_events(stack: &Stack) -> deploy_smoke::smoke::SmokeEvents {
    let hook = stack.function(HOOK).unwrap().spec();
    let raw = hook
        .env
        .get(config::SMOKE_EVENTS_VAR)
        .expect("the template sets SMOKE_EVENTS");
    config::parse_smoke_events(raw).unwrap()
}

/// The local function name of a binary, e.g. `d1234abcd-shop-dev-orders-http`.
fn name_of(stack: &Stack, binary: &str) -> String {
    stack.function(binary).unwrap().spec().name.clone()
}

/// A deployment of one function to version 2, as SAM's AppSpec writes it.
struct OneFunction(String);

impl Deployments for OneFunction {
    async fn app_spec(&self, _deployment_id: &str) -> Result<String, CallError> {
        Ok(json!({
            "version": 0.0,
            "Resources": [{"Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Name": self.0, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}
            }}]
        })
        .to_string())
    }
}

/// `lambda:InvokeFunction` through the local stack's runtime emulation. Lambda answers a
/// failed invocation with `FunctionError: Unhandled` and an error payload; so does this.
struct LocalLambda<'a>(&'a Stack);

impl Invoker for LocalLambda<'_> {
    async fn invoke(
        &self,
        function: &str,
        _version: &str,
        payload: &[u8],
    ) -> Result<Invocation, CallError> {
        let event: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| CallError::new("local invoke", e))?;
        let invoked = self
            .0
            .invoke(function, &event)
            .await
            .map_err(|e| CallError::new("local invoke", e))?;
        Ok(match invoked.outcome {
            Outcome::Response(body) => Invocation {
                function_error: None,
                payload: body.to_vec(),
            },
            Outcome::FunctionError {
                error_type,
                message,
            } => Invocation {
                function_error: Some("Unhandled".into()),
                payload: json!({"errorType": error_type, "errorMessage": message})
                    .to_string()
                    .into_bytes(),
            },
            other => Invocation {
                function_error: Some("Unhandled".into()),
                payload:
                    json!({"errorType": "Runtime.ExitError", "errorMessage": other.describe()})
                        .to_string()
                        .into_bytes(),
            },
        })
    }
}

/// Records every verdict.
#[derive(Default)]
struct Verdicts(Mutex<Vec<Status>>);

impl Reporter for Verdicts {
    async fn report(
        &self,
        _deployment_id: &str,
        _execution_id: &str,
        status: Status,
    ) -> Result<(), CallError> {
        self.0.lock().unwrap().push(status);
        Ok(())
    }
}

/// Runs the hook for a deployment of `binary` and returns the verdict it reported.
async fn hook_verdict(stack: &Stack, binary: &str) -> Status {
    hook_verdict_with(stack, binary, &smoke_events(stack)).await
}

/// [`hook_verdict`] with these smoke events.
async fn hook_verdict_with(
    stack: &Stack,
    binary: &str,
    events: &deploy_smoke::smoke::SmokeEvents,
) -> Status {
    let event = HookEvent {
        deployment_id: format!("d-{binary}"),
        execution_id: "exec-1".into(),
    };
    let reporter = Verdicts::default();
    let outcome = deploy_smoke::handle(
        &event,
        events,
        &OneFunction(name_of(stack, binary)),
        &LocalLambda(stack),
        &reporter,
    )
    .await
    .expect("the verdict is reported");
    assert_eq!(reporter.0.into_inner().unwrap(), vec![outcome.status]);
    outcome.status
}

#[tokio::test(flavor = "multi_thread")]
async fn every_guarded_function_passes_the_hook_against_the_local_stack() {
    let guarded = guarded();
    assert!(
        guarded.len() >= 9,
        "the three services' functions: {guarded:?}"
    );
    let names: Vec<&str> = guarded.iter().map(String::as_str).collect();
    let stack = stack(&names).await;
    for binary in &names {
        assert_eq!(
            hook_verdict(&stack, binary).await,
            Status::Succeeded,
            "{binary}: {:?}",
            stack.reporter.deliveries().last()
        );
    }
    // Each verdict came from a real invocation of that function.
    let invoked: Vec<String> = stack
        .reporter
        .deliveries()
        .into_iter()
        .filter(|d| d.source == "invoke")
        .map(|d| d.function)
        .collect();
    let expected: Vec<String> = names.iter().map(|b| name_of(&stack, b)).collect();
    assert_eq!(invoked, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_cannot_read_its_table_fails_the_hook() {
    let stack = stack(&["orders-http", "orders-relay"]).await;
    assert_eq!(hook_verdict(&stack, "orders-http").await, Status::Succeeded);
    let missing = [("ORDERS_TABLE".to_owned(), "no-such-table".to_owned())];
    stack
        .set_env("orders-http", missing.into_iter().collect())
        .unwrap();
    assert_eq!(hook_verdict(&stack, "orders-http").await, Status::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_crashes_fails_the_hook() {
    let stack = stack(&["notify-events"]).await;
    // Without its table variable the function exits at start, as a broken build would.
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("NOTIFY_TABLE".to_owned(), String::new());
    stack.set_env("notify-events", vars).unwrap();
    assert_eq!(hook_verdict(&stack, "notify-events").await, Status::Failed);
}

/// A function the configuration has no event of its own for (a new service's) is smoked with the
/// generic `http` event, a GET of a path no function routes: a started function answers 404,
/// which passes; one that cannot start does not.
#[tokio::test(flavor = "multi_thread")]
async fn an_http_function_without_its_own_smoke_event_passes_on_the_generic_one() {
    let stack = stack(&["notify-http"]).await;
    let hook = stack.function(HOOK).unwrap().spec();
    let mut raw: serde_json::Value =
        serde_json::from_str(hook.env.get(config::SMOKE_EVENTS_VAR).unwrap()).unwrap();
    raw.as_object_mut()
        .unwrap()
        .remove("notify-http")
        .expect("notify-http has its own event");
    let generic = config::parse_smoke_events(&raw.to_string()).unwrap();
    let event = generic
        .for_function(&name_of(&stack, "notify-http"))
        .unwrap();
    let answer = stack
        .invoke("notify-http", &serde_json::from_slice(event).unwrap())
        .await
        .unwrap();
    let Outcome::Response(body) = answer.outcome else {
        panic!("notify-http failed: {}", answer.outcome.describe());
    };
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["statusCode"], 404, "{body}");
    assert_eq!(
        hook_verdict_with(&stack, "notify-http", &generic).await,
        Status::Succeeded
    );

    let vars = [("NOTIFY_TABLE".to_owned(), String::new())];
    stack
        .set_env("notify-http", vars.into_iter().collect())
        .unwrap();
    assert_eq!(
        hook_verdict_with(&stack, "notify-http", &generic).await,
        Status::Failed
    );
}
