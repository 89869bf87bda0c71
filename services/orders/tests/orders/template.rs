//! services/orders/template.yaml and the orders code agree (testkit::template).

#[test]
fn the_template_matches_the_code() {
    testkit::template::assert_service_matches(testkit::template::ServiceCode {
        name: env!("CARGO_PKG_NAME"),
        functions: orders::config::FUNCTIONS,
        routes: orders::handlers::http::ROUTES,
    });
}
