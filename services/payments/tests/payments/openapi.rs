//! docs/openapi.yaml and the router agree on the payments routes and their statuses.

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    testkit::assert_routes_documented(payments::handlers::http::ROUTES, "/v1/payments");
}

#[test]
fn the_documented_payment_is_the_one_the_handler_writes() {
    testkit::schema::assert_response_documented::<payments::handlers::http::PaymentView<'_>>(
        "Payment",
    );
}
