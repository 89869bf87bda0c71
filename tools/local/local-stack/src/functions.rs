//! The template's functions and their events (HTTP routes, SQS and DynamoDB stream mappings),
//! resolved against the local resources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde_json::Value;

use crate::template::{Context, Resolver, Resource, Template};

/// One function of the template, ready to run locally.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// Local function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The function's name without the app and stage (`FunctionName` less its
    /// `${AppName}-${Stage}-`), e.g. `orders-relay`: unique in the template, unlike the binary
    /// (every relay runs `outbox-relay`). The local stack names pools, logs and env files by it.
    pub short_name: String,
    pub arn: String,
    /// The cargo binary (`BuildProperties.Binary`, else the logical id).
    pub binary: String,
    /// The cargo package that owns the binary, when it exists in the workspace.
    pub package: Option<String>,
    /// `CodeUri` as written in the template (relative to the template's directory).
    pub code_uri: Option<String>,
    pub timeout_s: u64,
    pub memory_mb: u64,
    pub env: BTreeMap<String, String>,
    pub log_format: Option<String>,
    pub app_log_level: Option<String>,
    pub reserved_concurrency: Option<usize>,
    pub routes: Vec<RouteSpec>,
    pub sqs: Vec<SqsMapping>,
    pub streams: Vec<StreamMapping>,
    pub schedules: Vec<ScheduleSpec>,
}

/// An `HttpApi` event of a function.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    /// The JWT authorizer's name, `None` for an open route.
    pub authorizer: Option<String>,
    pub scopes: Vec<String>,
}

/// An `SQS` event of a function.
#[derive(Debug, Clone)]
pub struct SqsMapping {
    pub queue_arn: String,
    pub batch_size: usize,
    pub window_s: u64,
    pub report_failures: bool,
    pub max_concurrency: Option<usize>,
    pub enabled: bool,
}

/// A `DynamoDB` event of a function.
#[derive(Debug, Clone)]
pub struct StreamMapping {
    pub stream_arn: String,
    pub starting_position: String,
    pub batch_size: usize,
    pub window_s: u64,
    /// `FilterCriteria.Filters[].Pattern`, parsed.
    pub filters: Vec<Value>,
    pub report_failures: bool,
    /// `-1` (or absent) means retry until the record expires.
    pub max_retries: i64,
    pub on_failure: Option<String>,
    pub enabled: bool,
}

/// A `Schedule` (EventBridge rule) or `ScheduleV2` (EventBridge Scheduler) event of a function.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The event's name under `Events`.
    pub event_id: String,
    /// `rate(…)`, `cron(…)` or `at(…)`.
    pub expression: String,
    /// `Input`: the JSON sent instead of the Scheduled Event.
    pub input: Option<String>,
    pub enabled: bool,
    /// The rule's (or schedule's) ARN, the `resources` of the Scheduled Event.
    pub arn: String,
}

/// The HTTP API's JWT authorizers by name.
#[derive(Debug, Clone, Default)]
pub struct HttpApiSpec {
    pub authorizers: BTreeMap<String, JwtAuthorizer>,
    pub default_authorizer: Option<String>,
}

/// `JwtConfiguration` of an authorizer as written in the template.
#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    pub issuer: Option<String>,
    pub audience: Vec<String>,
}

impl JwtAuthorizer {
    /// From a JWT configuration whose issuer and audience (a string or a list) are under
    /// `issuer` and `audience` (CloudFormation capitalises them, SAM does not).
    fn of(jwt: &Value, issuer: &str, audience: &str) -> Self {
        JwtAuthorizer {
            issuer: jwt.get(issuer).and_then(Value::as_str).map(str::to_owned),
            audience: match jwt.get(audience) {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            },
        }
    }
}

fn num(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
}

fn truthy(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// Finds the package owning `binary`: `CodeUri`'s own `Cargo.toml` when it is a package
/// with `src/bin/<binary>.rs` or, named `binary`, with `src/main.rs` (the shared
/// `outbox-relay`), else the services crate with `src/bin/<binary>.rs`.
fn find_package(
    root: &Path,
    template_dir: &Path,
    code_uri: Option<&str>,
    binary: &str,
) -> Option<String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(uri) = code_uri {
        candidates.push(template_dir.join(uri));
    }
    if let Ok(dir) = std::fs::read_dir(root.join("services")) {
        candidates.extend(dir.filter_map(Result::ok).map(|e| e.path()));
    }
    candidates.into_iter().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        let package = manifest.lines().find_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        })?;
        let own_bin = dir.join("src/bin").join(format!("{binary}.rs")).exists();
        let main = package == binary && dir.join("src/main.rs").exists();
        (own_bin || main).then_some(package)
    })
}

/// `name` (a resolved `FunctionName`) from after its `<AppName>-<Stage>-` (which a deployment
/// hook's `CodeDeployHook_` precedes).
fn short_name(name: Option<&str>, ctx: &Context) -> Option<String> {
    let param = |n: &str| {
        ctx.params
            .get(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let prefix = format!("{}-{}-", param("AppName"), param("Stage"));
    let name = name?;
    Some(match name.find(&prefix) {
        Some(at) => name[at + prefix.len()..].to_owned(),
        None => name.to_owned(),
    })
}

/// All functions of the template (whose conditions hold) with their events.
pub fn functions(
    template: &Template,
    ctx: &Context,
    root: &Path,
    template_dir: &Path,
) -> anyhow::Result<Vec<FunctionSpec>> {
    let r = Resolver { template, ctx };
    let mut out = Vec::new();
    for (id, res) in template.of_kind("AWS::Serverless::Function", ctx) {
        let p = r.resolve(&template.function_properties(res))?;
        let meta = r.resolve(&res.metadata)?;
        let binary = meta
            .pointer("/BuildProperties/Binary")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| id.clone());
        let code_uri = p.get("CodeUri").and_then(Value::as_str).map(str::to_owned);
        let package = find_package(root, template_dir, code_uri.as_deref(), &binary);
        let env = p
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let short_name = short_name(p.get("FunctionName").and_then(Value::as_str), ctx)
            .unwrap_or_else(|| binary.clone());
        let mut spec = FunctionSpec {
            logical_id: id.clone(),
            name: ctx.refs.get(id).cloned().unwrap_or_else(|| id.clone()),
            short_name,
            arn: ctx
                .attrs
                .get(&(id.clone(), "Arn".into()))
                .cloned()
                .unwrap_or_default(),
            binary,
            package,
            code_uri,
            timeout_s: num(p.get("Timeout")).unwrap_or(3).max(1) as u64,
            memory_mb: num(p.get("MemorySize")).unwrap_or(128).max(1) as u64,
            env,
            log_format: p
                .pointer("/LoggingConfig/LogFormat")
                .and_then(Value::as_str)
                .map(str::to_owned),
            app_log_level: p
                .pointer("/LoggingConfig/ApplicationLogLevel")
                .and_then(Value::as_str)
                .map(str::to_owned),
            reserved_concurrency: num(p.get("ReservedConcurrentExecutions"))
                .map(|n| n.max(1) as usize),
            routes: Vec::new(),
            sqs: Vec::new(),
            streams: Vec::new(),
            schedules: Vec::new(),
        };
        for (event_id, ev) in p
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let props = ev.get("Properties").cloned().unwrap_or(Value::Null);
            match ev.get("Type").and_then(Value::as_str) {
                Some("HttpApi") => spec.routes.push(RouteSpec {
                    method: props
                        .get("Method")
                        .and_then(Value::as_str)
                        .unwrap_or("ANY")
                        .to_uppercase(),
                    path: props
                        .get("Path")
                        .and_then(Value::as_str)
                        .unwrap_or("$default")
                        .to_owned(),
                    authorizer: props
                        .pointer("/Auth/Authorizer")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    scopes: props
                        .pointer("/Auth/AuthorizationScopes")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Some("SQS") => spec.sqs.push(SqsMapping {
                    queue_arn: props
                        .get("Queue")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    batch_size: num(props.get("BatchSize")).unwrap_or(10).max(1) as usize,
                    window_s: num(props.get("MaximumBatchingWindowInSeconds"))
                        .unwrap_or(0)
                        .max(0) as u64,
                    report_failures: props
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures")),
                    max_concurrency: num(props.pointer("/ScalingConfig/MaximumConcurrency"))
                        .map(|n| n.max(1) as usize),
                    enabled: truthy(props.get("Enabled"), true),
                }),
                Some("DynamoDB") => spec.streams.push(StreamMapping {
                    stream_arn: props
                        .get("Stream")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    starting_position: props
                        .get("StartingPosition")
                        .and_then(Value::as_str)
                        .unwrap_or("TRIM_HORIZON")
                        .to_owned(),
                    batch_size: num(props.get("BatchSize")).unwrap_or(100).max(1) as usize,
                    window_s: num(props.get("MaximumBatchingWindowInSeconds"))
                        .unwrap_or(0)
                        .max(0) as u64,
                    filters: props
                        .pointer("/FilterCriteria/Filters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|f| match f.get("Pattern")? {
                            Value::String(s) => serde_json::from_str(s).ok(),
                            other => Some(other.clone()),
                        })
                        .collect(),
                    report_failures: props
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures")),
                    max_retries: num(props.get("MaximumRetryAttempts")).unwrap_or(-1),
                    on_failure: props
                        .pointer("/DestinationConfig/OnFailure/Destination")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    enabled: truthy(props.get("Enabled"), true),
                }),
                Some(kind @ ("Schedule" | "ScheduleV2")) => {
                    let v2 = kind == "ScheduleV2";
                    let expression = props
                        .get(if v2 { "ScheduleExpression" } else { "Schedule" })
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let input = props.get("Input").map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    let state_enabled = props
                        .get("State")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.eq_ignore_ascii_case("ENABLED"));
                    // SAM names the generated rule (schedule) `<function id><event id>`.
                    let name = props
                        .get("Name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{}-{id}{event_id}", ctx.stack_name));
                    let arn = if v2 {
                        let group = props
                            .get("GroupName")
                            .and_then(Value::as_str)
                            .unwrap_or("default");
                        ctx.arn("scheduler", &format!("schedule/{group}/{name}"))
                    } else {
                        ctx.arn("events", &format!("rule/{name}"))
                    };
                    spec.schedules.push(ScheduleSpec {
                        event_id: event_id.clone(),
                        expression,
                        input,
                        enabled: truthy(props.get("Enabled"), true) && state_enabled,
                        arn,
                    });
                }
                _ => {}
            }
        }
        out.push(spec);
    }
    Ok(out)
}

/// The HTTP API's authorizers: those of the first `AWS::Serverless::HttpApi` (SAM's implicit API
/// has none) and every `AWS::ApiGatewayV2::Authorizer` (the platform's API, whose routes name
/// their authorizer).
pub fn http_api(template: &Template, ctx: &Context) -> anyhow::Result<HttpApiSpec> {
    let r = Resolver { template, ctx };
    let mut spec = HttpApiSpec::default();
    if let Some((_, res)) = template.of_kind("AWS::Serverless::HttpApi", ctx).next() {
        sam_http_api(&r, template, res, &mut spec)?;
    }
    // The platform's API: an AWS::ApiGatewayV2::Authorizer per JWT authorizer, named by the
    // routes (their AuthorizerId) rather than a default.
    for (name, a) in template.of_kind("AWS::ApiGatewayV2::Authorizer", ctx) {
        let a = r.resolve(&a.properties)?;
        if a.get("AuthorizerType").and_then(Value::as_str) != Some("JWT") {
            continue;
        }
        let jwt = a.get("JwtConfiguration").cloned().unwrap_or(Value::Null);
        spec.authorizers
            .insert(name.clone(), JwtAuthorizer::of(&jwt, "Issuer", "Audience"));
    }
    Ok(spec)
}

/// The authorizers of a SAM `HttpApi` (its `Auth`, with `Globals.HttpApi` merged).
fn sam_http_api(
    r: &Resolver<'_>,
    template: &Template,
    res: &Resource,
    spec: &mut HttpApiSpec,
) -> anyhow::Result<()> {
    let mut props = match template.globals.get("HttpApi") {
        Some(g) => r.resolve(g)?,
        None => Value::Null,
    };
    let own = r.resolve(&res.properties)?;
    if props.is_null() {
        props = own;
    } else if let (Some(base), Value::Object(o)) = (props.as_object_mut(), own) {
        base.extend(o);
    }
    spec.default_authorizer = props
        .pointer("/Auth/DefaultAuthorizer")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for (name, a) in props
        .pointer("/Auth/Authorizers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let jwt = a
            .get("JwtConfiguration")
            .ok_or_else(|| anyhow!("authorizer {name} is not a JWT authorizer"));
        let Ok(jwt) = jwt else { continue };
        spec.authorizers
            .insert(name.clone(), JwtAuthorizer::of(jwt, "issuer", "audience"));
    }
    Ok(())
}
