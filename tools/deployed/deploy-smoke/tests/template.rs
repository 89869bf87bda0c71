//! The hook's configuration in `infra/platform.yaml` is usable: `SMOKE_EVENTS` parses, gives
//! every function of every service stack (found, not listed) an event, and the HTTP events are
//! authenticated API Gateway v2 GETs: of a route of the function when the event is the
//! function's own, else (the generic `http` event, which a new service's function gets) of a
//! path no function routes, which every function answers 404 once it has started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use deploy_smoke::{
    config::{FUNCTION, SMOKE_EVENTS_VAR, parse_smoke_events},
    smoke::{Kind, SmokeEvents},
};

const TEMPLATE: &str = include_str!("../../../../infra/platform.yaml");

/// The functions of the service stacks that the hook guards (they serve routes, a queue or a
/// stream).
fn guarded() -> Vec<local_stack::functions::FunctionSpec> {
    let root = testkit::repo_root();
    let template = local_stack::stacks::load(&root).unwrap();
    testkit::template::template_functions(&template)
        .into_iter()
        .filter(|f| !(f.routes.is_empty() && f.sqs.is_empty() && f.streams.is_empty()))
        .collect()
}

/// The deployed name of a function in stage prod of app `shop`.
fn deployed(f: &local_stack::functions::FunctionSpec) -> String {
    format!("shop-prod-{}", f.short_name)
}

/// The value of `SMOKE_EVENTS` as deployed for app `shop` (the `!Sub` resolved).
fn smoke_events() -> Result<SmokeEvents, String> {
    let line = TEMPLATE
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(SMOKE_EVENTS_VAR)?.strip_prefix(':'))
        .ok_or("SMOKE_EVENTS is not set in the template")?;
    let value = line.trim().trim_start_matches("!Sub").trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or("SMOKE_EVENTS is not a single-quoted string")?
        .replace("''", "'")
        .replace("${AppName}", "shop");
    parse_smoke_events(&value).map_err(|e| e.to_string())
}

#[test]
fn the_hook_reads_only_variables_the_template_sets() {
    for var in FUNCTION.vars {
        assert!(
            TEMPLATE.contains(&format!("{var}:")),
            "{var} is not in the template"
        );
    }
    assert!(TEMPLATE.contains(&format!("Binary: {}", FUNCTION.binary)));
}

#[test]
fn every_guarded_function_has_a_smoke_event_and_a_rule() {
    let events = smoke_events().unwrap();
    let guarded = guarded();
    assert!(guarded.len() >= 9, "the three services' functions");
    for f in &guarded {
        let name = deployed(f);
        assert!(Kind::of(&name).is_some(), "no smoke rule for {name}");
        assert!(
            events.for_function(&name).is_some(),
            "no smoke event for {name}"
        );
    }
    // A function of a service the configuration does not name gets the generic events.
    for kind in ["http", "events", "relay"] {
        assert!(
            events
                .for_function(&format!("shop-prod-widgets-{kind}"))
                .is_some(),
            "no smoke event for a new service's {kind} function"
        );
    }
}

/// A smoke event as an API Gateway v2 request, checked to be an authenticated GET.
fn authenticated_get(name: &str, raw: &[u8]) -> String {
    let request: ApiGatewayV2httpRequest =
        serde_json::from_slice(raw).expect("an API Gateway v2 request");
    assert_eq!(
        request.request_context.http.method.as_str(),
        "GET",
        "{name}"
    );
    let jwt = request
        .request_context
        .authorizer
        .and_then(|a| a.jwt)
        .expect("a JWT authorizer context");
    assert_eq!(
        jwt.claims.get("sub").map(String::as_str),
        Some("deploy-smoke")
    );
    assert_eq!(
        jwt.claims.get("scope").map(String::as_str),
        Some("shop/orders")
    );
    request.raw_path.expect("a path")
}

/// Whether `path` matches the route template `route` (`/v1/orders/{id}`).
fn routes(route: &str, path: &str) -> bool {
    let (route, path): (Vec<&str>, Vec<&str>) =
        (route.split('/').collect(), path.split('/').collect());
    route.len() == path.len()
        && route
            .iter()
            .zip(&path)
            .all(|(r, p)| r == p || (r.starts_with('{') && !p.is_empty()))
}

#[test]
fn http_smoke_events_are_authenticated_reads_of_the_functions_own_routes_or_of_none() {
    let events = smoke_events().unwrap();
    let generic = events
        .for_function("shop-prod-widgets-http")
        .expect("a generic http event");
    let guarded = guarded();
    let all_routes: Vec<&str> = guarded
        .iter()
        .flat_map(|f| f.routes.iter().map(|r| r.path.as_str()))
        .collect();
    let generic_path = authenticated_get("the generic http event", generic);
    assert!(
        !all_routes.iter().any(|r| routes(r, &generic_path)),
        "the generic http event GETs {generic_path}, a route of a function"
    );
    for f in guarded.iter().filter(|f| !f.routes.is_empty()) {
        let name = deployed(f);
        let raw = events.for_function(&name).expect("an http event");
        if raw == generic {
            continue;
        }
        let path = authenticated_get(&name, raw);
        assert!(
            f.routes
                .iter()
                .any(|r| r.method == "GET" && routes(&r.path, &path)),
            "{name} gets {path}, not a GET route of its own"
        );
    }
}

#[test]
fn consumers_and_relays_get_an_empty_batch() {
    let events = smoke_events().unwrap();
    for name in ["shop-dev-orders-events", "shop-dev-notify-relay"] {
        let raw = events.for_function(name).expect("a batch event");
        let event: serde_json::Value = serde_json::from_slice(raw).expect("JSON");
        assert_eq!(event, serde_json::json!({"Records": []}), "{name}");
    }
}
