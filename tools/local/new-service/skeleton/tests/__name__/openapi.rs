//! The OpenAPI document (this service's openapi.yaml) and the router agree on the __name__
//! routes, their statuses and bodies.

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    testkit::assert_routes_documented(__name__::handlers::http::ROUTES, "/v1/__name__");
}

#[test]
fn the_documented_page_of_records_is_the_one_the_handler_writes() {
    testkit::schema::assert_response_documented::<
        kit::page::Page<__name__::handlers::http::RecordView<'_>>,
    >("__Name__RecordPage");
}
