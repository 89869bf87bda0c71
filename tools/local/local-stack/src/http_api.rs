//! The HTTP API: routes from the template's `HttpApi` events, JWT validation like the HTTP API
//! authorizer, requests turned into API Gateway payload 2.0 events and responses mapped back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::jwt::{JwtKey, claims_as_strings, token_scopes};
use crate::report::{Delivery, Reporter, correlation_id};
use crate::runtime::{FunctionPool, Outcome};

/// The HTTP API's integration timeout: no request waits longer for its function.
const INTEGRATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One route of the HTTP API.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub authorized: bool,
    pub scopes: Vec<String>,
    pub function: Arc<FunctionPool>,
}

impl Route {
    pub fn route_key(&self) -> String {
        if self.path == "$default" {
            "$default".into()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }

    /// Path parameters when `path` matches this route.
    fn matches(&self, method: &str, path: &str) -> Option<Map<String, Value>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        if self.path == "$default" {
            return Some(Map::new());
        }
        let pattern: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut params = Map::new();
        for (i, seg) in pattern.iter().enumerate() {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                let rest = actual.get(i..).map(|r| r.join("/")).unwrap_or_default();
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), Value::String(rest));
                return Some(params);
            }
            let a = actual.get(i)?;
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if a.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), Value::String(percent_decode(a)));
            } else if seg != a {
                return None;
            }
        }
        (pattern.len() == actual.len()).then_some(params)
    }

    /// Lower sorts first: literal paths before parameters, greedy and `$default` last.
    fn rank(&self) -> (u8, usize, u8) {
        let greedy = self.path.contains("+}");
        let default = self.path == "$default";
        let params = self.path.matches('{').count();
        (
            u8::from(default) * 2 + u8::from(greedy),
            params,
            u8::from(self.method == "ANY"),
        )
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything the HTTP API handler needs.
#[derive(Debug)]
pub struct Api {
    pub routes: Vec<Route>,
    pub key: JwtKey,
    pub reporter: Arc<Reporter>,
    pub region: String,
    pub account: String,
}

impl Api {
    pub fn new(
        mut routes: Vec<Route>,
        key: JwtKey,
        reporter: Arc<Reporter>,
        region: String,
        account: String,
    ) -> Self {
        routes.sort_by_key(Route::rank);
        Self {
            routes,
            key,
            reporter,
            region,
            account,
        }
    }
}

/// The axum app serving the HTTP API.
pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(api)
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("apigw-requestid", "local"),
        ],
        axum::Json(json!({"message": text})),
    )
        .into_response()
}

async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let response = route_request(&api, peer, req).await;
    if response.extensions().get::<Invoked>().is_none() {
        api.reporter.record(Delivery {
            function: "-".into(),
            source: "http".into(),
            ids: Vec::new(),
            failed_ids: Vec::new(),
            success: false,
            outcome: format!(
                "{method} {path} → {} (no function called)",
                response.status().as_u16()
            ),
            correlation_id: None,
            duration: started.elapsed(),
            ..Delivery::default()
        });
    }
    response
}

/// Marks a response that reached a function (and was reported already).
#[derive(Debug, Clone, Copy)]
struct Invoked;

async fn route_request(api: &Arc<Api>, peer: SocketAddr, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let Some((route, params)) = api
        .routes
        .iter()
        .find_map(|r| r.matches(&method, &path).map(|p| (r, p)))
    else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut authorizer = None;
    if route.authorized {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
                    .unwrap_or(h)
                    .trim()
            });
        let Some(claims) = token.and_then(|t| api.key.validate(t).ok()) else {
            return message(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        // Like API Gateway: a route with AuthorizationScopes needs any one of them in the
        // token's `scope` or `scp` claim, else 403.
        let scopes = token_scopes(&claims);
        if !route.scopes.is_empty() && !route.scopes.iter().any(|s| scopes.contains(s)) {
            return message(StatusCode::FORBIDDEN, "Forbidden");
        }
        authorizer = Some(json!({"jwt": {
            "claims": claims_as_strings(&claims),
            "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
        }}));
    }
    let Ok(body) = axum::body::to_bytes(body, 10 * 1024 * 1024).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    // Like API Gateway: the request's trace (continued from the client's `X-Amzn-Trace-Id`
    // when it sends one) is in the event's headers and is the function invocation's trace.
    let trace_header = trace_header_for(&parts.headers);
    let mut headers = parts.headers.clone();
    if let Ok(value) = HeaderValue::from_str(&trace_header) {
        headers.insert("x-amzn-trace-id", value);
    }
    let event = build_event(
        api,
        route,
        &parts.method,
        &parts.uri,
        &headers,
        peer,
        params,
        authorizer,
        &body,
    );
    let fname = route.function.spec().name.clone();
    let invoked = match tokio::time::timeout(
        INTEGRATION_TIMEOUT,
        route
            .function
            .invoke_traced(Bytes::from(event.to_string()), trace_header.clone()),
    )
    .await
    {
        Ok(invoked) => invoked,
        Err(_) => crate::runtime::Invoked {
            request_id: String::new(),
            trace_header,
            outcome: Outcome::TimedOut(INTEGRATION_TIMEOUT),
            duration: started.elapsed(),
        },
    };
    let (response, status) = match &invoked.outcome {
        Outcome::Response(b) => {
            let r = map_response(b);
            let s = r.status();
            (r, s.as_u16().to_string())
        }
        Outcome::FunctionError { .. } => (
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            format!("500 ({})", invoked.outcome.describe()),
        ),
        Outcome::TimedOut(_) => (
            message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
            format!("504 ({})", invoked.outcome.describe()),
        ),
        Outcome::Crashed(_) | Outcome::InitFailed(_) => (
            message(StatusCode::BAD_GATEWAY, "Internal Server Error"),
            format!("502 ({})", invoked.outcome.describe()),
        ),
    };
    let corr = response
        .headers()
        .get("x-correlation-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| invoked.outcome.json().as_ref().and_then(correlation_id));
    api.reporter.record(Delivery {
        function: fname,
        source: "http".into(),
        ids: Vec::new(),
        failed_ids: Vec::new(),
        success: invoked.outcome.is_success(),
        outcome: format!("{method} {path} → {status}"),
        correlation_id: corr,
        duration: started.elapsed(),
        ..Delivery::saga(&event, &invoked)
    });
    let mut response = response;
    response.extensions_mut().insert(Invoked);
    response
}

fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.contains("x-www-form-urlencoded")
        || ct.contains("yaml")
}

/// The trace header of a request: a new trace, or the client's when its `X-Amzn-Trace-Id`
/// names a root (kept, with a new parent segment).
fn trace_header_for(headers: &HeaderMap) -> String {
    let new = crate::runtime::new_trace_header();
    let client_root = headers
        .get("x-amzn-trace-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(';').find_map(|p| p.trim().strip_prefix("Root=")))
        .filter(|root| {
            root.len() <= 64 && root.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        });
    match client_root {
        Some(root) => new
            .split(';')
            .map(|part| {
                if part.starts_with("Root=") {
                    format!("Root={root}")
                } else {
                    part.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(";"),
        None => new,
    }
}

/// The API Gateway HTTP API payload 2.0 event for a request.
#[allow(clippy::too_many_arguments)]
pub fn build_event(
    api: &Api,
    route: &Route,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    peer: SocketAddr,
    params: Map<String, Value>,
    authorizer: Option<Value>,
    body: &[u8],
) -> Value {
    let mut hs: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        hs.entry(name.as_str().to_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let raw_query = uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            percent_decode(&k.replace('+', " ")),
            percent_decode(&v.replace('+', " ")),
        );
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let now = chrono::Utc::now();
    let domain = hs
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let mut request_context = json!({
        "accountId": api.account,
        "apiId": "local",
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or("local"),
        "http": {
            "method": method.as_str(),
            "path": uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": peer.ip().to_string(),
            "userAgent": hs.get("user-agent").cloned().unwrap_or_default(),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route.route_key(),
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(a) = authorizer {
        request_context["authorizer"] = a;
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": hs,
        "requestContext": request_context,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = Value::Object(params);
    }
    if !body.is_empty() {
        let text = is_text(headers.get("content-type").and_then(|h| h.to_str().ok()));
        match std::str::from_utf8(body) {
            Ok(s) if text => event["body"] = Value::String(s.to_owned()),
            _ => {
                event["body"] = Value::String(B64.encode(body));
                event["isBase64Encoded"] = Value::Bool(true);
            }
        }
    }
    event
}

/// Maps a payload 2.0 response back to HTTP, the way API Gateway does.
pub fn map_response(raw: &[u8]) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(raw).ok();
    let Some(Value::Object(r)) = parsed.filter(|v| v.get("statusCode").is_some()) else {
        // Valid JSON without a statusCode: 200 with the JSON as the body.
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            Body::from(raw.to_vec()),
        )
            .into_response();
    };
    let status = r
        .get("statusCode")
        .and_then(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok()))
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    let mut add = |k: &str, v: &Value| {
        let v = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(&v)) {
            headers.append(k, v);
        }
    };
    for (k, v) in r
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        add(k, v);
    }
    for (k, vs) in r
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for v in vs.as_array().into_iter().flatten() {
            add(k, v);
        }
    }
    for c in r
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add("set-cookie", c);
    }
    let body = match r.get("body") {
        Some(Value::String(s)) if r.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            B64.decode(s).unwrap_or_default()
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    if !headers.contains_key("content-type") && !body.is_empty() {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    (status, headers, Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pool() -> Arc<FunctionPool> {
        let spec = crate::functions::FunctionSpec {
            logical_id: "F".into(),
            name: "f".into(),
            short_name: "f".into(),
            arn: "arn:f".into(),
            binary: "f".into(),
            package: None,
            code_uri: None,
            timeout_s: 3,
            memory_mb: 128,
            env: Default::default(),
            log_format: None,
            app_log_level: None,
            reserved_concurrency: None,
            routes: Vec::new(),
            sqs: Vec::new(),
            streams: Vec::new(),
            schedules: Vec::new(),
        };
        let launch = crate::runtime::Launch {
            spec: Arc::new(spec),
            executable: "/bin/false".into(),
            env: Default::default(),
            log_file: "/dev/null".into(),
            echo_logs: false,
        };
        Arc::new(FunctionPool::new(launch, 1))
    }

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            authorized: false,
            scopes: Vec::new(),
            function: pool(),
        }
    }

    #[test]
    fn literal_routes_win_over_parameters_and_greedy_and_default_come_last() {
        let f = pool();
        let mk = |m: &str, p: &str| Route {
            function: f.clone(),
            ..route(m, p)
        };
        let api = Api::new(
            vec![
                mk("ANY", "$default"),
                mk("GET", "/v1/{proxy+}"),
                mk("GET", "/v1/orders/{id}"),
                mk("GET", "/v1/orders/mine"),
            ],
            crate::jwt::JwtKey {
                secret: String::new(),
                issuer: String::new(),
                audience: String::new(),
            },
            Arc::new(Reporter::new(false)),
            "us-east-1".into(),
            "123456789012".into(),
        );
        let pick = |m: &str, p: &str| {
            api.routes
                .iter()
                .find_map(|r| r.matches(m, p).map(|params| (r.route_key(), params)))
        };
        assert_eq!(
            pick("GET", "/v1/orders/mine").unwrap().0,
            "GET /v1/orders/mine"
        );
        let (key, params) = pick("GET", "/v1/orders/o%201").unwrap();
        assert_eq!(key, "GET /v1/orders/{id}");
        assert_eq!(params["id"], "o 1");
        let (key, params) = pick("GET", "/v1/a/b").unwrap();
        assert_eq!(key, "GET /v1/{proxy+}");
        assert_eq!(params["proxy"], "a/b");
        assert_eq!(pick("POST", "/v1/orders").unwrap().0, "$default");
    }

    #[test]
    fn the_event_has_the_api_gateway_v2_shape() {
        let api = Api::new(
            Vec::new(),
            crate::jwt::JwtKey {
                secret: String::new(),
                issuer: String::new(),
                audience: String::new(),
            },
            Arc::new(Reporter::new(false)),
            "us-east-1".into(),
            "123456789012".into(),
        );
        let r = route("POST", "/v1/things/{id}");
        let mut headers = HeaderMap::new();
        headers.append("X-Dup", HeaderValue::from_static("a"));
        headers.append("X-Dup", HeaderValue::from_static("b"));
        headers.append("Cookie", HeaderValue::from_static("c1=1; c2=2"));
        headers.append(
            "Content-Type",
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.append("Host", HeaderValue::from_static("127.0.0.1:3000"));
        let uri: http::Uri = "/v1/things/7".parse().unwrap();
        let mut params = Map::new();
        params.insert("id".into(), json!("7"));
        let auth = json!({"jwt": {"claims": {"sub": "alice"}, "scopes": null}});
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let e = build_event(
            &api,
            &r,
            &Method::POST,
            &uri,
            &headers,
            peer,
            params,
            Some(auth),
            &[0, 159],
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "POST /v1/things/{id}");
        assert_eq!(e["rawPath"], "/v1/things/7");
        assert_eq!(e["rawQueryString"], "");
        assert!(e.get("queryStringParameters").is_none());
        assert_eq!(e["headers"]["x-dup"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], json!(["c1=1", "c2=2"]));
        assert_eq!(e["pathParameters"]["id"], "7");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], B64.encode([0u8, 159]));
        let rc = &e["requestContext"];
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["accountId"], "123456789012");
        assert_eq!(rc["domainName"], "127.0.0.1:3000");
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(rc["authorizer"]["jwt"]["claims"]["sub"], "alice");
        assert!(rc["timeEpoch"].is_i64());
    }

    #[test]
    fn percent_decoding_handles_escapes_and_plain_text() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("abc"), "abc");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[tokio::test]
    async fn a_response_with_cookies_and_base64_body_maps_back() {
        let raw = json!({"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["a=1", "b=2"],
            "body": B64.encode(b"\x00\x01"), "isBase64Encoded": true})
        .to_string();
        let r = map_response(raw.as_bytes());
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let body = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], b"\x00\x01");
    }
}
