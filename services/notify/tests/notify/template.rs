//! services/notify/template.yaml and the notify code agree (testkit::template).

#[test]
fn the_template_matches_the_code() {
    testkit::template::assert_service_matches(testkit::template::ServiceCode {
        name: env!("CARGO_PKG_NAME"),
        functions: notify::config::FUNCTIONS,
        routes: notify::handlers::http::ROUTES,
    });
}
