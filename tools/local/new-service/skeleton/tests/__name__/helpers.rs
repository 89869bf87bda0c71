//! Fixtures as the functions receive them (SQS records of EventBridge events, API Gateway v2
//! requests), and the checks every test shares.

use __name__::{
    handlers::{events, http::ROUTES},
    ports::RecordStore,
};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::{Body, Request};
use serde_json::{Value, json};

/// A new OrderConfirmed (fresh event and order ids) of customer `sub`, as EventBridge delivers it.
pub fn order_confirmed(sub: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/order-confirmed.json")).unwrap();
    event["detail"]["id"] = json!(uuid::Uuid::now_v7());
    event["detail"]["data"]["order_id"] = json!(uuid::Uuid::now_v7());
    event["detail"]["data"]["customer_id"] = json!(sub);
    event
}

/// Runs the events function over one batch of `bodies`, as the SQS mapping would.
pub async fn deliver<S: RecordStore>(store: &S, bodies: &[Value]) -> SqsBatchResponse {
    let mut batch = SqsEvent::default();
    batch.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(body.to_string());
            record
        })
        .collect();
    kit::sqs::process_batch(__name__::SERVICE, batch, |message| {
        events::handle(store, message)
    })
    .await
}

/// The ids of the messages a batch reported as failed.
pub fn failed(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

/// `GET /v1/__name__` with `query` (raw `k=v` pairs) by `sub` (`None`: no `sub` claim).
pub fn list_request(sub: Option<&str>, query: &[(&str, &str)]) -> Request {
    let mut request: Value =
        serde_json::from_str(include_str!("../fixtures/list-records.json")).unwrap();
    let claims = &mut request["requestContext"]["authorizer"]["jwt"]["claims"];
    match sub {
        Some(sub) => claims["sub"] = json!(sub),
        None => {
            claims.as_object_mut().unwrap().remove("sub");
        }
    }
    request["rawQueryString"] = json!(
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    request["queryStringParameters"] = query.iter().map(|(k, v)| (*k, json!(v))).collect();
    lambda_http::request::from_str(&request.to_string()).unwrap()
}

/// Sends `request` to the HTTP handler; returns the status (checked against the route's
/// declared statuses) and the JSON body.
pub async fn call<S: RecordStore>(store: &S, request: Request) -> (u16, Value) {
    let route = kit::http::match_route(ROUTES, request.method().as_str(), request.uri().path());
    let response = __name__::handlers::http::handle(store, &testkit::scopes(), request).await;
    let status = response.status().as_u16();
    if let Ok(matched) = route {
        assert!(
            matched.route.statuses.contains(&status),
            "{} answered {status}, which the route does not declare",
            matched.route.path
        );
    }
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (status, body)
}
