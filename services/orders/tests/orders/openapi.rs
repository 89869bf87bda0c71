//! docs/openapi.yaml and the router agree on the orders routes and their statuses.

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    testkit::assert_routes_documented(orders::handlers::http::ROUTES, "/v1/orders");
}

#[test]
fn the_documented_place_order_body_is_the_one_the_handler_reads() {
    testkit::schema::assert_request_documented::<orders::domain::PlaceOrder>("PlaceOrder");
}

#[test]
fn the_documented_order_is_the_one_the_handler_writes() {
    testkit::schema::assert_response_documented::<orders::handlers::http::OrderView<'_>>("Order");
}

#[test]
fn the_documented_page_of_orders_is_the_one_the_handler_writes() {
    testkit::schema::assert_response_documented::<
        kit::page::Page<orders::handlers::http::OrderView<'_>>,
    >("OrderPage");
}

#[test]
fn the_documented_problem_is_the_one_every_handler_writes() {
    testkit::schema::assert_response_documented::<kit::error::Problem>("Problem");
}
