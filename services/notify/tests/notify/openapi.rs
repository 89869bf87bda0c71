//! docs/openapi.yaml and the router agree on the notify routes and their statuses.

#[test]
fn every_route_and_status_of_the_router_is_documented_and_nothing_else() {
    testkit::assert_routes_documented(notify::handlers::http::ROUTES, "/v1/notifications");
}

#[test]
fn the_documented_page_of_notifications_is_the_one_the_handler_writes() {
    testkit::schema::assert_response_documented::<
        kit::page::Page<notify::handlers::http::NotificationView<'_>>,
    >("NotificationPage");
}
