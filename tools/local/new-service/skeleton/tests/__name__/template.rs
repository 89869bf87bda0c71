//! services/__name__/template.yaml and the __name__ code agree (testkit::template).

#[test]
fn the_template_matches_the_code() {
    testkit::template::assert_service_matches(testkit::template::ServiceCode {
        name: env!("CARGO_PKG_NAME"),
        functions: __name__::config::FUNCTIONS,
        routes: __name__::handlers::http::ROUTES,
    });
}
