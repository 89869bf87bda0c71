//! The stacks and the code agree: every template function's binary exists in its crate, every
//! service checks its own template against its config and routes (testkit::template; here the
//! checker itself is tested on orders), every route requires the
//! customer scope the function is configured with (a scope of the Cognito resource server), the
//! API's CORS configuration lets a browser send and read the headers the handlers use, and
//! kit's TTLs outlive the template's retention periods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use local_stack::functions::FunctionSpec;
use local_stack::resources::name_resources;
use local_stack::stacks::{self, StackSource};
use local_stack::template::{Context, Resolver, Template};
use serde_json::Value;
use testkit::template::{ServiceCode, service_problems, template_functions};

fn root() -> PathBuf {
    testkit::repo_root()
}

/// The texts of the platform and every service stack, changed as a test needs, read as one
/// template by [`stacks::merge`].
#[derive(Debug, Clone)]
struct Stacks {
    platform: StackSource,
    services: Vec<StackSource>,
}

impl Stacks {
    fn read() -> Self {
        let (platform, services) = stacks::sources(&root()).unwrap();
        Self { platform, services }
    }

    fn template(&self) -> Template {
        stacks::merge(&self.platform, &self.services).unwrap()
    }

    fn all(&self) -> impl Iterator<Item = &StackSource> {
        std::iter::once(&self.platform).chain(&self.services)
    }

    fn contains(&self, needle: &str) -> bool {
        self.all().any(|s| s.text.contains(needle))
    }

    /// Each text changed by `change`.
    fn map(&self, mut change: impl FnMut(&str) -> String) -> Self {
        let mut out = self.clone();
        for s in std::iter::once(&mut out.platform).chain(&mut out.services) {
            s.text = change(&s.text);
        }
        out
    }

    fn replace(&self, from: &str, to: &str) -> Self {
        self.map(|t| t.replace(from, to))
    }

    /// The first occurrence only, in the first stack that has it.
    fn replace_first(&self, from: &str, to: &str) -> Self {
        let mut done = false;
        self.map(|t| {
            if !done && t.contains(from) {
                done = true;
                t.replacen(from, to, 1)
            } else {
                t.to_owned()
            }
        })
    }
}

impl PartialEq for Stacks {
    fn eq(&self, other: &Self) -> bool {
        self.all().map(|s| &s.text).eq(other.all().map(|s| &s.text))
    }
}

/// The scopes the template's Cognito resource server defines (`<Identifier>/<ScopeName>`) and
/// those the app client may request.
fn cognito_scopes(template: &Template) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ctx = Context::new(template, "check", "us-east-1", &Default::default()).unwrap();
    name_resources(template, &mut ctx, None).unwrap();
    let r = Resolver {
        template,
        ctx: &ctx,
    };
    let properties = |kind: &str| -> Vec<Value> {
        template
            .of_kind(kind, &ctx)
            .map(|(_, res)| r.resolve(&res.properties).unwrap())
            .collect()
    };
    let mut defined = BTreeSet::new();
    for server in properties("AWS::Cognito::UserPoolResourceServer") {
        let id = server["Identifier"].as_str().unwrap_or_default().to_owned();
        for scope in server["Scopes"].as_array().into_iter().flatten() {
            defined.insert(format!(
                "{id}/{}",
                scope["ScopeName"].as_str().unwrap_or_default()
            ));
        }
    }
    let mut allowed = BTreeSet::new();
    for client in properties("AWS::Cognito::UserPoolClient") {
        for scope in client["AllowedOAuthScopes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            allowed.insert(scope.as_str().unwrap_or_default().to_owned());
        }
    }
    (defined, allowed)
}

/// Every route requires the customer scope its function is configured with; the configured
/// scopes are the resource server's, and clients can obtain the customer scope.
fn scope_problems(template: &Template, fns: &[FunctionSpec]) -> Vec<String> {
    let (defined, allowed) = cognito_scopes(template);
    let mut problems = Vec::new();
    for f in fns.iter().filter(|f| !f.routes.is_empty()) {
        let customer = f.env.get(kit::http::CUSTOMER_SCOPE_VAR);
        let admin = f.env.get(kit::http::ADMIN_SCOPE_VAR);
        let (Some(customer), Some(admin)) = (customer, admin) else {
            problems.push(format!(
                "{}: serves routes but has no {} and {}",
                f.binary,
                kit::http::CUSTOMER_SCOPE_VAR,
                kit::http::ADMIN_SCOPE_VAR
            ));
            continue;
        };
        for (var, scope) in [
            (kit::http::CUSTOMER_SCOPE_VAR, customer),
            (kit::http::ADMIN_SCOPE_VAR, admin),
        ] {
            if !defined.contains(scope) {
                problems.push(format!(
                    "{}: {var}={scope} is not a scope of the resource server {defined:?}",
                    f.binary
                ));
            }
        }
        if customer == admin {
            problems.push(format!(
                "{}: the customer and admin scopes are the same",
                f.binary
            ));
        }
        if !allowed.contains(customer) {
            problems.push(format!(
                "{}: no Cognito client may request the customer scope {customer}",
                f.binary
            ));
        }
        for route in &f.routes {
            if route.scopes != [customer.clone()] {
                problems.push(format!(
                    "{}: route {} {} requires {:?}, not the customer scope {customer}",
                    f.binary, route.method, route.path, route.scopes
                ));
            }
        }
    }
    problems
}

/// The orders service's code: the fixture of the tests that mutate the template.
const ORDERS: ServiceCode<'static> = ServiceCode {
    name: "orders",
    functions: orders::config::FUNCTIONS,
    routes: orders::handlers::http::ROUTES,
};

/// The test each service runs on itself (`services/<name>/tests/**`): the call that checks
/// its template against its code.
const SERVICE_CHECK: &str = "testkit::template::assert_service_matches";

/// Every `.rs` file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every disagreement between the stacks and the code: the binaries, the scopes, every service
/// has its own template test, and (the fixture) the orders service's functions and routes.
fn problems(stacks: &Stacks) -> Vec<String> {
    let root = root();
    let template = stacks.template();
    let fns = template_functions(&template);
    let mut problems = Vec::new();

    // Every service checks its own template against its code (testkit::template), so a new
    // service cannot escape that check.
    for entry in std::fs::read_dir(root.join("services")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("template.yaml").exists() {
            continue;
        }
        if !files_under(&dir.join("tests"))
            .iter()
            .any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(SERVICE_CHECK)))
        {
            problems.push(format!("{}: no test calls {SERVICE_CHECK}", dir.display()));
        }
    }

    for f in &fns {
        let Some(uri) = f.code_uri.as_deref() else {
            problems.push(format!("{} has no CodeUri", f.logical_id));
            continue;
        };
        let dir = root.join("infra").join(uri);
        let bin = dir.join("src/bin").join(format!("{}.rs", f.binary));
        let main = dir.join("src/main.rs");
        let in_services = Path::new(uri).starts_with(root.join("services"))
            || uri.trim_start_matches("../").starts_with("services/");
        if in_services && !bin.exists() {
            problems.push(format!(
                "{}: {} does not exist",
                f.logical_id,
                bin.display()
            ));
        }
        if !in_services && !bin.exists() && !main.exists() {
            problems.push(format!(
                "{}: no binary {} under {}",
                f.logical_id,
                f.binary,
                dir.display()
            ));
        }
    }

    problems.extend(service_problems(&fns, &ORDERS));
    problems.extend(scope_problems(&template, &fns));
    problems
}

#[test]
fn the_template_matches_the_code() {
    let problems = problems(&Stacks::read());
    assert!(
        problems.is_empty(),
        "template and code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The headers a browser client sends (beyond the CORS-safelisted ones) and those it must be
/// able to read from a cross-origin response.
const SENT_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    orders::handlers::http::IDEMPOTENCY_HEADER,
    kit::http::CORRELATION_HEADER,
];
const READ_HEADERS: &[&str] = &[
    "location",
    orders::handlers::http::REPLAYED_HEADER,
    kit::http::CORRELATION_HEADER,
];

/// What the HTTP API's CORS configuration misses of [`SENT_HEADERS`] and [`READ_HEADERS`].
fn cors_problems(stacks: &Stacks) -> Vec<String> {
    let template = stacks.template();
    let mut ctx = Context::new(&template, "check", "us-east-1", &Default::default()).unwrap();
    name_resources(&template, &mut ctx, None).unwrap();
    let r = Resolver {
        template: &template,
        ctx: &ctx,
    };
    let mut problems = Vec::new();
    let apis = template
        .of_kind("AWS::Serverless::HttpApi", &ctx)
        .chain(template.of_kind("AWS::ApiGatewayV2::Api", &ctx));
    for (id, api) in apis {
        let cors = r.resolve(&api.properties).unwrap()["CorsConfiguration"].clone();
        let listed = |key: &str| -> BTreeSet<String> {
            cors[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        };
        for (key, wanted) in [
            ("AllowHeaders", SENT_HEADERS),
            ("ExposeHeaders", READ_HEADERS),
        ] {
            let have = listed(key);
            for header in wanted.iter().filter(|h| !have.contains(**h)) {
                problems.push(format!("{id}: CorsConfiguration.{key} lacks {header}"));
            }
        }
    }
    problems
}

#[test]
fn a_browser_may_send_and_read_the_headers_the_api_uses() {
    let problems = cors_problems(&Stacks::read());
    assert!(problems.is_empty(), "CORS: {}", problems.join("; "));
}

#[test]
fn a_header_missing_from_the_cors_configuration_is_caught() {
    let text = Stacks::read();
    let changed = text.replace("x-correlation-id, ", "");
    assert_ne!(changed, text, "the template lists x-correlation-id in CORS");
    let problems = cors_problems(&changed);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("AllowHeaders lacks x-correlation-id")),
        "{problems:?}"
    );
}

#[test]
fn a_route_or_env_var_removed_from_the_template_is_caught() {
    let text = Stacks::read();
    // Drop one route (`RouteKey: "POST /v1/orders/{id}/cancel"`) and one env var line.
    let without_route = text.replace(
        "RouteKey: \"POST /v1/orders/{id}/cancel\"",
        "RouteKey: \"POST /v1/orders/{id}/cancelled\"",
    );
    assert_ne!(without_route, text, "the template has the cancel route");
    let p = problems(&without_route);
    assert!(
        p.iter()
            .any(|m| m.contains("POST /v1/orders/{id}/cancel is not in the template")),
        "{p:?}"
    );

    assert!(text.contains("ORDERS_TABLE:"), "ORDERS_TABLE is set");
    let mut removed = false;
    let without_var = text.map(|t| {
        let mut lines: Vec<&str> = t.lines().collect();
        if let Some(at) = lines
            .iter()
            .position(|l| l.trim_start().starts_with("ORDERS_TABLE:"))
            .filter(|_| !removed)
        {
            lines.remove(at);
            removed = true;
        }
        lines.join("\n")
    });
    let p = problems(&without_var);
    assert!(
        p.iter()
            .any(|m| m.contains("ORDERS_TABLE is read by its config but not set")),
        "{p:?}"
    );
}

#[test]
fn a_route_without_the_customer_scope_or_a_scope_the_pool_does_not_define_is_caught() {
    let text = Stacks::read();
    let needle = "AuthorizationScopes: [!Sub \"${AppName}/orders\"]";
    assert!(
        text.contains(needle),
        "the routes require the customer scope"
    );
    let without = text.replace_first(needle, "AuthorizationScopes: []");
    let p = problems(&without);
    assert!(
        p.iter().any(|m| m.contains("requires []")),
        "a route without scopes: {p:?}"
    );

    let renamed = text.replace(
        "CUSTOMER_SCOPE: !Sub \"${AppName}/orders\"",
        "CUSTOMER_SCOPE: shop/orders",
    );
    assert_ne!(
        renamed, text,
        "the template sets CUSTOMER_SCOPE from AppName"
    );
    assert!(
        problems(&renamed).is_empty(),
        "same value with the default AppName"
    );
    let renamed = renamed
        .replace("Default: shop\n", "Default: store\n")
        .replace("Default: shop,", "Default: store,")
        .replace("Default: shop}", "Default: store}");
    let p = problems(&renamed);
    assert!(
        p.iter()
            .any(|m| m.contains("CUSTOMER_SCOPE=shop/orders is not a scope of the resource server")),
        "a hard-coded scope after renaming the app: {p:?}"
    );
}

#[test]
fn every_function_with_an_event_names_a_real_binary() {
    let fns = template_functions(&Stacks::read().template());
    let by_name: BTreeMap<&str, &FunctionSpec> =
        fns.iter().map(|f| (f.short_name.as_str(), f)).collect();
    assert_eq!(by_name.len(), fns.len(), "two functions share a short name");
    for f in fns
        .iter()
        .filter(|f| !(f.routes.is_empty() && f.sqs.is_empty() && f.streams.is_empty()))
    {
        assert!(
            f.package.is_some(),
            "{} ({}) has no crate with that binary",
            f.logical_id,
            f.binary
        );
    }
}

/// Every service's outbox is published by the one shared relay binary, told its service by
/// `SERVICE_NAME`: a relay is configuration of a service, not code it copies.
#[test]
fn every_outbox_relay_is_the_shared_binary_named_for_its_service() {
    let fns = template_functions(&Stacks::read().template());
    let relays: Vec<&FunctionSpec> = fns.iter().filter(|f| !f.streams.is_empty()).collect();
    assert!(
        !relays.is_empty(),
        "no stream-triggered function in the template"
    );
    for f in relays {
        assert_eq!(
            f.binary,
            kit::relay::BINARY,
            "{} is built from a binary of its own",
            f.logical_id
        );
        let service = f.env.get(kit::relay::SERVICE_VAR).unwrap_or_else(|| {
            panic!(
                "{} does not say whose outbox it relays (SERVICE_NAME)",
                f.logical_id
            )
        });
        assert!(
            f.name.ends_with(&format!("-{service}-relay")),
            "{} ({}) relays the outbox of {service}",
            f.logical_id,
            f.name
        );
    }
}

const DAY: u64 = 24 * 3600;
/// What each TTL must keep beyond the retention it covers: time for an operator to act.
const TTL_MARGIN: u64 = DAY;
/// What SQS keeps a message when `MessageRetentionPeriod` is not set.
const SQS_DEFAULT_RETENTION: u64 = 4 * DAY;
/// What a stream keeps a record, the age at which a mapping without
/// `MaximumRecordAgeInSeconds` (or with -1) gives up at the latest.
const STREAM_RETENTION: u64 = DAY;

fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn days(seconds: u64) -> String {
    format!("{:.1} days", seconds as f64 / DAY as f64)
}

/// Every stream event source mapping of the template's functions (their `Properties`).
fn stream_mappings(template: &Template) -> Vec<&Value> {
    template
        .resources
        .values()
        .filter(|r| r.kind == "AWS::Serverless::Function")
        .filter_map(|r| r.properties.get("Events").and_then(Value::as_object))
        .flat_map(|events| events.values())
        .filter(|e| e.get("Type").and_then(Value::as_str) == Some("DynamoDB"))
        .filter_map(|e| e.get("Properties"))
        .collect()
}

/// Every disagreement between the template's retention periods and kit's TTLs:
/// - a processed-event marker (`kit::idempotency::EVENT_TTL`) outlives every copy of its event
///   that can still be delivered: the bus archive (`EventArchiveRetentionDays`, whose
///   `MaxValue` must exist and whose 0 = "forever" must not be allowed) and then a queue or
///   DLQ (the longest `MessageRetentionPeriod` of the consumer queues);
/// - an outbox item (`kit::outbox::TTL_SECONDS`) outlives the relay DLQ message that names its
///   stream batch (a record can wait `MaximumRecordAgeInSeconds` before it goes to the DLQ,
///   which keeps it `MessageRetentionPeriod`), so `redrive republish` still finds it.
fn retention_problems(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();

    let queue_retention = |id: &str| -> u64 {
        template.resources[id]
            .properties
            .get("MessageRetentionPeriod")
            .and_then(number)
            .map_or(SQS_DEFAULT_RETENTION, |s| s.max(0) as u64)
    };
    let queues: Vec<&String> = template
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::SQS::Queue")
        .map(|(id, _)| id)
        .collect();
    let (relay_dlqs, consumer_queues): (Vec<&String>, Vec<&String>) =
        queues.into_iter().partition(|id| id.ends_with("RelayDlq"));

    // Processed-event markers against the archive and the consumer queues.
    let marker_ttl = kit::idempotency::EVENT_TTL.as_secs();
    let longest_queue = consumer_queues
        .iter()
        .map(|id| queue_retention(id))
        .max()
        .unwrap_or(0);
    match template.parameters.get("EventArchiveRetentionDays") {
        None => problems.push("parameter EventArchiveRetentionDays is missing".to_owned()),
        Some(archive) => {
            if archive.get("MinValue").and_then(number).unwrap_or(0) < 1 {
                problems.push(
                    "EventArchiveRetentionDays allows 0 (keep forever): no processed-event \
                     marker outlives a replay of that archive"
                        .to_owned(),
                );
            }
            let default = archive.get("Default").and_then(number).unwrap_or(0);
            let max = archive.get("MaxValue").and_then(number);
            match max {
                None => problems.push("EventArchiveRetentionDays has no MaxValue".to_owned()),
                Some(max) if default > max => problems.push(format!(
                    "EventArchiveRetentionDays Default {default} > MaxValue {max}"
                )),
                Some(_) => {}
            }
            let longest_archive = max.unwrap_or(default).max(0) as u64 * DAY;
            if marker_ttl < longest_archive + longest_queue + TTL_MARGIN {
                problems.push(format!(
                    "kit::idempotency::EVENT_TTL ({}) < archive retention ({}) + longest \
                     consumer queue retention ({}) + margin ({}): a replayed event would be \
                     handled twice",
                    days(marker_ttl),
                    days(longest_archive),
                    days(longest_queue),
                    days(TTL_MARGIN)
                ));
            }
        }
    }

    // Outbox items against the relay DLQs.
    let outbox_ttl = kit::outbox::TTL_SECONDS.max(0) as u64;
    let mappings = stream_mappings(template);
    if relay_dlqs.is_empty() || mappings.is_empty() {
        problems.push("no relay DLQ or no stream mapping found".to_owned());
    }
    let oldest_record = mappings
        .iter()
        .map(
            |m| match m.get("MaximumRecordAgeInSeconds").and_then(number) {
                Some(age) if age >= 0 => age as u64,
                _ => STREAM_RETENTION,
            },
        )
        .max()
        .unwrap_or(STREAM_RETENTION);
    for dlq in relay_dlqs {
        let retention = queue_retention(dlq);
        let needed = oldest_record + retention + TTL_MARGIN;
        if outbox_ttl < needed {
            problems.push(format!(
                "kit::outbox::TTL_SECONDS ({}) < oldest stream record ({}) + {dlq} retention \
                 ({}) + margin ({}): a republish from the DLQ would find nothing",
                days(outbox_ttl),
                days(oldest_record),
                days(retention),
                days(TTL_MARGIN)
            ));
        }
    }
    problems
}

#[test]
fn the_ttls_outlive_the_retention_periods_of_the_template() {
    let template = Stacks::read().template();
    let problems = retention_problems(&template);
    assert!(
        problems.is_empty(),
        "TTLs and retention periods disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_longer_retention_in_the_template_is_caught() {
    let template = Stacks::read().template();
    let with_archive = |key: &str, value: i64| {
        let mut t = template.clone();
        t.parameters["EventArchiveRetentionDays"][key] = value.into();
        t
    };
    let p = retention_problems(&with_archive("MinValue", 0));
    assert!(p.iter().any(|m| m.contains("allows 0")), "{p:?}");
    let p = retention_problems(&with_archive("MaxValue", 365));
    assert!(
        p.iter().any(|m| m.contains("kit::idempotency::EVENT_TTL")),
        "{p:?}"
    );

    // The relays' mappings (infra/modules/relay.yaml, expanded into each service) keep records
    // a week instead of 6 hours.
    let mut older_records = template.clone();
    let mut changed = 0;
    for resource in older_records.resources.values_mut() {
        let Some(events) = resource
            .properties
            .get_mut("Events")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for event in events.values_mut() {
            if event["Type"] == "DynamoDB" {
                event["Properties"]["MaximumRecordAgeInSeconds"] = 604_800.into();
                changed += 1;
            }
        }
    }
    assert!(changed > 0, "the template has stream mappings");
    let p = retention_problems(&older_records);
    assert!(
        p.iter().any(|m| m.contains("kit::outbox::TTL_SECONDS")),
        "{p:?}"
    );
}

/// Every way a relay could skip an event without an alarm: each stream-triggered function
/// needs an `OnFailure` destination whose depth has an alarm, an `IteratorAge` alarm, and an
/// alarm on the `EventsNotPublished` metric `kit::relay` emits for its service.
fn relay_alarm_problems(template: &Template) -> Vec<String> {
    let alarms: Vec<&Value> = template
        .resources
        .values()
        .filter(|r| r.kind == "AWS::CloudWatch::Alarm")
        .map(|r| &r.properties)
        .collect();
    let has_alarm = |namespace: &str, metric: &str, dimension: &str, value: &Value| {
        alarms.iter().any(|a| {
            a["Namespace"] == namespace
                && a["MetricName"] == metric
                && a.get("AlarmActions").is_some()
                && a["Dimensions"].as_array().is_some_and(|ds| {
                    ds.iter()
                        .any(|d| d["Name"] == dimension && d["Value"] == *value)
                })
        })
    };
    let mut problems = Vec::new();
    for (id, function) in template
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::Serverless::Function")
    {
        let streams: Vec<&Value> = function
            .properties
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|events| events.values())
            .filter(|e| e["Type"] == "DynamoDB")
            .map(|e| &e["Properties"])
            .collect();
        if streams.is_empty() {
            continue;
        }
        for stream in streams {
            match stream
                .pointer("/DestinationConfig/OnFailure/Destination/Fn::GetAtt/0")
                .and_then(Value::as_str)
            {
                None => problems.push(format!("{id}: a stream mapping has no OnFailure queue")),
                Some(dlq) => {
                    let name = serde_json::json!({"Fn::GetAtt": [dlq, "QueueName"]});
                    if !has_alarm(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        &name,
                    ) {
                        problems.push(format!("{id}: no alarm on the depth of {dlq}"));
                    }
                }
            }
        }
        if !has_alarm(
            "AWS/Lambda",
            "IteratorAge",
            "FunctionName",
            &function.properties["FunctionName"],
        ) {
            problems.push(format!("{id}: no IteratorAge alarm"));
        }
        // The relay's metrics carry the service it is told (`SERVICE_NAME`) as `service`.
        let service = function
            .properties
            .pointer(&format!(
                "/Environment/Variables/{}",
                kit::relay::SERVICE_VAR
            ))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !has_alarm(
            kit::metrics::NAMESPACE,
            "EventsNotPublished",
            "service",
            &Value::from(service),
        ) {
            problems.push(format!("{id}: no EventsNotPublished alarm for {service}"));
        }
    }
    problems
}

#[test]
fn no_relay_can_skip_an_event_without_an_alarm() {
    let template = Stacks::read().template();
    let problems = relay_alarm_problems(&template);
    assert!(
        problems.is_empty(),
        "relays without alarms:\n  {}",
        problems.join("\n  ")
    );
    let mut without = template.clone();
    without
        .resources
        .remove("NotifyRelayEventsNotPublishedAlarm");
    without.resources.remove("PaymentsRelayDlqAlarm");
    without.resources.remove("OrdersRelayIteratorAgeAlarm");
    assert_eq!(
        relay_alarm_problems(&without),
        [
            "NotifyRelayFunction: no EventsNotPublished alarm for notify",
            "OrdersRelayFunction: no IteratorAge alarm",
            "PaymentsRelayFunction: no alarm on the depth of PaymentsRelayDlq",
        ]
    );
}

/// The per-customer limits of orders-http: each env var is set from its template parameter,
/// whose default is the code's default (so the local stack and an unset variable agree).
fn customer_limit_problems(template: &Template) -> Vec<String> {
    use orders::config as c;
    let mut problems = Vec::new();
    let env = template
        .resources
        .get("OrdersHttpFunction")
        .and_then(|r| r.properties.pointer("/Environment/Variables"))
        .cloned()
        .unwrap_or_default();
    for (param, var, default) in [
        (
            "CustomerWriteLimit",
            c::WRITE_LIMIT_VAR,
            i64::from(c::DEFAULT_WRITE_LIMIT),
        ),
        (
            "CustomerWriteWindowSeconds",
            c::WRITE_WINDOW_VAR,
            i64::try_from(c::DEFAULT_WRITE_WINDOW_SECONDS).unwrap(),
        ),
        (
            "MaxOpenOrdersPerCustomer",
            c::MAX_OPEN_ORDERS_VAR,
            i64::from(c::DEFAULT_MAX_OPEN_ORDERS),
        ),
    ] {
        match template.parameters.get(param) {
            None => problems.push(format!("parameter {param} is missing")),
            Some(p) => {
                let got = p.get("Default").and_then(number);
                if got != Some(default) {
                    problems.push(format!(
                        "{param} Default {got:?} is not the code's default {default}"
                    ));
                }
                if p.get("MinValue").and_then(number).unwrap_or(0) < 1 {
                    problems.push(format!("{param} allows 0 (the function refuses it)"));
                }
            }
        }
        if env.get(var) != Some(&serde_json::json!({ "Ref": param })) {
            problems.push(format!(
                "orders-http: {var} is {:?}, not !Ref {param}",
                env.get(var)
            ));
        }
    }
    problems
}

#[test]
fn the_customer_limits_come_from_parameters_with_the_codes_defaults() {
    let template = Stacks::read().template();
    let problems = customer_limit_problems(&template);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut changed = template.clone();
    changed.parameters["MaxOpenOrdersPerCustomer"]["Default"] = 3.into();
    let p = customer_limit_problems(&changed);
    assert!(
        p.iter()
            .any(|m| m.contains("MaxOpenOrdersPerCustomer Default")),
        "{p:?}"
    );
}

/// The batching window of every event source mapping: `!Ref` of its kind's parameter
/// (`QueueBatchingWindowSeconds` for SQS, `StreamBatchingWindowSeconds` for streams), whose
/// default is 0 (the saga path is tuned for latency) and whose range is Lambda's (0–300 s).
fn batching_window_problems(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (param, _) in BATCHING_WINDOWS {
        match template.parameters.get(*param) {
            None => problems.push(format!("parameter {param} is missing")),
            Some(p) => {
                for (field, want) in [("Default", 0), ("MinValue", 0), ("MaxValue", 300)] {
                    let got = p.get(field).and_then(number);
                    if got != Some(want) {
                        problems.push(format!("{param} {field} is {got:?}, not {want}"));
                    }
                }
            }
        }
    }
    for (name, r) in &template.resources {
        let events = r
            .properties
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        for (event, e) in events {
            let kind = e.get("Type").and_then(Value::as_str).unwrap_or_default();
            let Some((param, _)) = BATCHING_WINDOWS.iter().find(|(_, k)| *k == kind) else {
                continue;
            };
            let window = e.pointer("/Properties/MaximumBatchingWindowInSeconds");
            if window != Some(&serde_json::json!({ "Ref": param })) {
                problems.push(format!(
                    "{name}.{event}: MaximumBatchingWindowInSeconds is {window:?}, not !Ref {param}"
                ));
            }
        }
    }
    problems
}

/// Each batching window parameter and the event source kind it sets.
const BATCHING_WINDOWS: &[(&str, &str)] = &[
    ("QueueBatchingWindowSeconds", "SQS"),
    ("StreamBatchingWindowSeconds", "DynamoDB"),
];

#[test]
fn every_mapping_takes_its_batching_window_from_its_kinds_parameter_which_defaults_to_0() {
    let template = Stacks::read().template();
    let problems = batching_window_problems(&template);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut changed = template.clone();
    let notify = changed.resources.get_mut("NotifyEventsFunction").unwrap();
    notify.properties["Events"]["NotifyQueue"]["Properties"]["MaximumBatchingWindowInSeconds"] =
        1.into();
    let p = batching_window_problems(&changed);
    assert!(
        p.iter()
            .any(|m| m.contains("NotifyQueue: MaximumBatchingWindowInSeconds")),
        "{p:?}"
    );
}
