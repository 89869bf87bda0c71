//! Fixtures as the functions receive them (SQS records of EventBridge events, API Gateway v2
//! requests), and the checks every test shares.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::{Body, Request};
use notify::{
    handlers::{events, http::ROUTES},
    ports::{NotificationLog, Notifier},
};
use serde_json::{Value, json};

/// The EventBridge event (an SQS message body) of fixture `name`, e.g. `order-confirmed`.
pub fn eventbridge(name: &str) -> Value {
    let text = match name {
        "order-confirmed" => include_str!("../fixtures/order-confirmed.json"),
        "order-cancelled" => include_str!("../fixtures/order-cancelled.json"),
        "payment-refunded" => include_str!("../fixtures/payment-refunded.json"),
        "payment-authorized" => include_str!("../fixtures/payment-authorized.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// Fixture `name` as a new event (fresh id) for customer `sub`.
pub fn event_for(name: &str, sub: &str) -> Value {
    let mut event = eventbridge(name);
    event["detail"]["id"] = json!(uuid::Uuid::now_v7());
    event["detail"]["data"]["customer_id"] = json!(sub);
    event
}

/// Runs the events function over one batch of `bodies`, as the SQS mapping would.
pub async fn deliver<N: Notifier>(notifier: &N, bodies: &[Value]) -> SqsBatchResponse {
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
    kit::sqs::process_batch(notify::SERVICE, batch, |message| {
        events::handle(notifier, message)
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

/// `GET /v1/notifications` with `query` (raw `k=v` pairs) by `sub` (`None`: no `sub` claim).
pub fn list_request(sub: Option<&str>, query: &[(&str, &str)]) -> Request {
    let mut request: Value =
        serde_json::from_str(include_str!("../fixtures/list-notifications.json")).unwrap();
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
pub async fn call<L: NotificationLog>(log: &L, request: Request) -> (u16, Value) {
    let route = kit::http::match_route(ROUTES, request.method().as_str(), request.uri().path());
    let response = notify::handlers::http::handle(log, &testkit::scopes(), request).await;
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

/// Checks `envelope` against the committed envelope schema and its payload's schema.
pub fn assert_valid_against_committed_schemas(envelope: &kit::events::Envelope) {
    let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kit/schemas");
    let validator = |file: &str| {
        let text = std::fs::read_to_string(schemas.join(file)).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    };
    let whole = serde_json::to_value(envelope).unwrap();
    let payload_file = format!("{}.v{}.json", envelope.event_type, envelope.version);
    for (file, value) in [
        ("envelope.json", &whole),
        (payload_file.as_str(), &envelope.data),
    ] {
        let errors: Vec<String> = validator(file)
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{value} breaks {file}: {errors:?}");
    }
}
