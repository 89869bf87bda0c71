//! Building API Gateway v2 requests from the fixture, and sending them to the handler.

use lambda_http::{Body, Request};
use orders::{handlers::http::ROUTES, ports::OrderRepository};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("../fixtures/apigw-v2-request.json");

/// An API Gateway v2 request, as the HTTP API would send it to the function.
pub struct Req(Value);

pub fn get(path: &str) -> Req {
    Req::new("GET", path, None)
}

pub fn post(path: &str, body: Value) -> Req {
    Req::new("POST", path, Some(body.to_string()))
}

impl Req {
    pub fn delete(path: &str) -> Self {
        Req::new("DELETE", path, None)
    }

    fn new(method: &str, path: &str, body: Option<String>) -> Self {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
        if let Some(body) = body {
            event["body"] = json!(body);
        }
        Req(event)
    }

    /// The caller's `sub` claim; `None` removes it.
    pub fn sub(mut self, sub: Option<&str>) -> Self {
        let claims = &mut self.0["requestContext"]["authorizer"]["jwt"]["claims"];
        match sub {
            Some(sub) => claims["sub"] = json!(sub),
            None => {
                claims.as_object_mut().unwrap().remove("sub");
            }
        }
        self
    }

    pub fn scope(mut self, scope: &str) -> Self {
        self.0["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = json!(scope);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0["headers"][name] = json!(value);
        self
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.0["body"] = json!(body);
        self
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.0["rawQueryString"] = json!(raw.join("&"));
        self.0["queryStringParameters"] = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        self
    }

    pub fn build(&self) -> Request {
        lambda_http::request::from_str(&self.0.to_string()).unwrap()
    }
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

/// Sends `request` to the orders HTTP handler and checks that the status it got is one its
/// route declares (so the OpenAPI check, which reads the declarations, covers it).
pub async fn send<R: OrderRepository>(orders: &R, request: Req) -> Reply {
    let method = request.0["requestContext"]["http"]["method"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = request.0["rawPath"].as_str().unwrap().to_owned();
    let response =
        orders::handlers::http::handle(orders, &testkit::scopes(), request.build()).await;
    let status = response.status().as_u16();
    if let Ok(matched) = kit::http::match_route(ROUTES, &method, &path) {
        assert!(
            matched.route.statuses.contains(&status),
            "{method} {path} answered {status}, which its route does not declare"
        );
    }
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        Body::Empty => Value::Null,
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
        _ => Value::Null,
    };
    Reply {
        status,
        headers: response.headers().clone(),
        body,
    }
}

/// A valid order body.
pub fn order_body(card_token: &str) -> Value {
    json!({
        "lines": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": {"amount": 1250, "currency": "EUR"}},
            {"sku": "SKU-2", "quantity": 1, "unit_price": {"amount": 499, "currency": "EUR"}}
        ],
        "card_token": card_token
    })
}

/// Places an order for `sub` and returns its id.
pub async fn place<R: OrderRepository>(orders: &R, sub: &str) -> String {
    let reply = send(
        orders,
        post("/v1/orders", order_body("tok_approve")).sub(Some(sub)),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// The envelope validated against the committed JSON Schemas (envelope and payload).
pub fn assert_matches_schema(envelope: &kit::events::Envelope) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kit/schemas");
    let load = |file: String| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    };
    let envelope_json = serde_json::to_value(envelope).unwrap();
    let schema = jsonschema::validator_for(&load("envelope.json".into())).unwrap();
    assert!(
        schema.is_valid(&envelope_json),
        "envelope breaks its schema: {envelope_json}"
    );
    let payload = jsonschema::validator_for(&load(format!(
        "{}.v{}.json",
        envelope.event_type, envelope.version
    )))
    .unwrap();
    assert!(
        payload.is_valid(&envelope.data),
        "{} breaks its schema: {}",
        envelope.event_type,
        envelope.data
    );
}
