//! The hook's configuration in `infra/platform.yaml` is usable: `SMOKE_EVENTS` parses, gives
//! every guarded function an event, and the HTTP events are API Gateway v2 requests with
//! JWT claims for a read route of that function.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use deploy_smoke::{
    config::{FUNCTION, SMOKE_EVENTS_VAR, parse_smoke_events},
    smoke::{Kind, SmokeEvents},
};

const TEMPLATE: &str = include_str!("../../../infra/platform.yaml");

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
    for service in ["orders", "payments", "notify"] {
        for function in ["http", "events", "relay"] {
            let name = format!("shop-prod-{service}-{function}");
            assert!(Kind::of(&name).is_some(), "no smoke rule for {name}");
            assert!(
                events.for_function(&name).is_some(),
                "no smoke event for {name}"
            );
        }
    }
}

#[test]
fn http_smoke_events_are_authenticated_reads_of_the_functions_own_routes() {
    let events = smoke_events().unwrap();
    for (service, path) in [
        ("orders", "/v1/orders"),
        ("payments", "/v1/payments/"),
        ("notify", "/v1/notifications"),
    ] {
        let name = format!("shop-prod-{service}-http");
        let raw = events.for_function(&name).expect("an http event");
        let request: ApiGatewayV2httpRequest =
            serde_json::from_slice(raw).expect("an API Gateway v2 request");
        assert_eq!(
            request.request_context.http.method.as_str(),
            "GET",
            "{name}"
        );
        assert!(
            request
                .raw_path
                .as_deref()
                .is_some_and(|p| p.starts_with(path)),
            "{name} gets {:?}",
            request.raw_path
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
