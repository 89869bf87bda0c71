//! docs/openapi.yaml and the router agree on the orders routes and their statuses.

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    testkit::assert_routes_documented(orders::handlers::http::ROUTES, "/v1/orders");
}
