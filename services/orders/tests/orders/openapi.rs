//! docs/openapi.yaml and the router agree on the orders routes and their statuses.

use std::collections::BTreeSet;

use orders::handlers::http::ROUTES;

fn documented() -> BTreeSet<(String, String, u16)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml");
    let doc: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut found = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/orders") {
            continue;
        }
        for (method, operation) in operations.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                found.insert((method.to_uppercase(), path.clone(), status.parse().unwrap()));
            }
        }
    }
    found
}

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    let routed: BTreeSet<(String, String, u16)> = ROUTES
        .iter()
        .flat_map(|r| {
            r.statuses
                .iter()
                .map(|s| (r.method.to_owned(), r.path.to_owned(), *s))
        })
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in docs/openapi.yaml but not in the router: {unrouted:?}"
    );
}
