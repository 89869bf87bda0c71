//! services/payments/template.yaml and the payments code agree (testkit::template).

#[test]
fn the_template_matches_the_code() {
    testkit::template::assert_service_matches(testkit::template::ServiceCode {
        name: env!("CARGO_PKG_NAME"),
        functions: payments::config::FUNCTIONS,
        routes: payments::handlers::http::ROUTES,
    });
}
