//! The HTTP handler with API Gateway v2 requests from tests/fixtures.

use kit::{events::Event, ids::OrderId};
use lambda_http::{Body, Request};
use payments::handlers::http::{ROUTES, handle};
use serde_json::Value;

use crate::helpers::{App, app, message, placed};

/// The order every fixture asks about.
const FIXTURE_ORDER: &str = "0190a0e0-0000-7000-8000-000000000001";

fn request(fixture: &str) -> Request {
    lambda_http::request::from_str(fixture).unwrap()
}

/// An app where the fixture order was placed by `customer` and authorized.
async fn with_payment_of(customer: &str) -> App {
    let app = app();
    let mut event = placed(&OrderId::parse(FIXTURE_ORDER).unwrap(), "tok_approve");
    if let Event::OrderPlaced(placed) = &mut event {
        placed.customer_id = customer.into();
    }
    app.deliver(message(&event, 1)).await.unwrap();
    app
}

async fn send(app: &App, request: Request) -> (u16, String, Value) {
    let response = handle(&app.store, &testkit::scopes(), request).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    };
    assert!(
        ROUTES[0].statuses.contains(&status),
        "{status} is not declared for {}",
        ROUTES[0].path
    );
    (status, content_type, body)
}

#[tokio::test]
async fn the_owner_reads_the_payment_of_their_order() {
    let app = with_payment_of("customer-1").await;
    let (status, content_type, body) =
        send(&app, request(include_str!("../fixtures/get-payment.json"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert_eq!(body["order_id"], FIXTURE_ORDER);
    assert_eq!(body["status"], "AUTHORIZED");
    assert_eq!(body["amount"]["amount"], 2500);
    assert_eq!(body["amount"]["currency"], "EUR");
    assert_eq!(body["customer_id"], "customer-1");
    assert!(
        body.get("provider_reference").is_none(),
        "internal field leaked: {body}"
    );
    assert!(
        body.get("version").is_none(),
        "internal field leaked: {body}"
    );
}

#[tokio::test]
async fn another_customers_payment_is_not_found() {
    let app = with_payment_of("customer-2").await;
    let (status, content_type, body) =
        send(&app, request(include_str!("../fixtures/get-payment.json"))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn an_admin_reads_any_customers_payment() {
    let app = with_payment_of("customer-2").await;
    let (status, _, body) = send(
        &app,
        request(include_str!("../fixtures/get-payment-as-admin.json")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer_id"], "customer-2");
}

#[tokio::test]
async fn a_request_without_a_sub_claim_is_unauthorized() {
    let app = with_payment_of("customer-1").await;
    let (status, content_type, _) = send(
        &app,
        request(include_str!("../fixtures/get-payment-without-sub.json")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(content_type, "application/problem+json");
}

#[tokio::test]
async fn a_token_without_the_customer_scope_is_forbidden_even_an_admins() {
    let app = with_payment_of("customer-1").await;
    for scope in ["", "shop/admin"] {
        let mut event: Value =
            serde_json::from_str(include_str!("../fixtures/get-payment.json")).unwrap();
        event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = scope.into();
        let (status, content_type, body) = send(&app, request(&event.to_string())).await;
        assert_eq!(status, 403, "scope {scope:?}: {body}");
        assert_eq!(content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn an_id_that_is_not_an_order_id_is_not_found() {
    let app = with_payment_of("customer-1").await;
    let (status, _, _) = send(
        &app,
        request(include_str!("../fixtures/get-payment-bad-id.json")),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_order_without_a_payment_is_not_found() {
    let app = app();
    let (status, _, _) = send(&app, request(include_str!("../fixtures/get-payment.json"))).await;
    assert_eq!(status, 404);
}
