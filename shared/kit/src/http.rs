//! HTTP plumbing for `lambda_http` functions behind an API Gateway HTTP API (payload v2):
//! the route table, the caller from the JWT authorizer's claims, JSON in and out, the
//! correlation id, and the one place an [`ApiError`] becomes a problem+json response.

use std::{collections::HashMap, future::Future};

use lambda_http::{Body, Request, RequestExt, Response, request::RequestContext, service_fn};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    config::{ConfigError, required},
    error::ApiError,
    metrics::{self, Metric},
    telemetry,
};

/// The OAuth scope every route requires (`<AppName>/orders`; the HTTP API's routes require it too).
pub const CUSTOMER_SCOPE_VAR: &str = "CUSTOMER_SCOPE";
/// The OAuth scope that lets a caller read any customer's resources (`<AppName>/admin`).
pub const ADMIN_SCOPE_VAR: &str = "ADMIN_SCOPE";
/// The variables every HTTP function reads (for its service's `config::FUNCTIONS`).
pub const ENV_VARS: &[&str] = &[CUSTOMER_SCOPE_VAR, ADMIN_SCOPE_VAR];

/// The largest request body any route accepts (a 50-line order is under 10 KiB); larger ones
/// are answered 413 before the handler runs. API Gateway's own limit is 10 MB, Lambda's 6 MB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of serde's message about a malformed body is shown: it may quote the client's input.
pub const MAX_DETAIL_CHARS: usize = 200;

/// Header carrying the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// One route of a service, in API Gateway form: `GET /v1/orders/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// Every status the route can answer with; the OpenAPI document must list the same.
    pub statuses: &'static [u16],
}

impl Route {
    pub const fn new(method: &'static str, path: &'static str, statuses: &'static [u16]) -> Self {
        Route {
            method,
            path,
            statuses,
        }
    }
}

/// The route a request matched and its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub params: HashMap<&'static str, String>,
}

impl Matched {
    /// A path parameter; the route table guarantees it exists when the route declares it.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// Finds the route for `method` and `path`: 404 when no path matches, 405 when the path
/// matches with another method.
pub fn match_route(routes: &[Route], method: &str, path: &str) -> Result<Matched, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for route in routes {
        let pattern: Vec<&'static str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = HashMap::new();
        let matches = pattern.iter().zip(&segments).all(|(p, s)| {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !s.is_empty() => {
                    params.insert(name, (*s).to_owned());
                    true
                }
                Some(_) => false,
                None => p == s,
            }
        });
        if !matches {
            continue;
        }
        if route.method.eq_ignore_ascii_case(method) {
            return Ok(Matched {
                route: *route,
                params,
            });
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound("route"))
    } else {
        Err(ApiError::MethodNotAllowed(allowed))
    }
}

/// The OAuth scope names of the API, from the function's configuration: they derive from the
/// template's `AppName`, so a renamed application keeps working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// Required on every request; a token without it is refused (403).
    pub customer: String,
    /// Lets a caller read any customer's resources. Admin tokens carry both scopes.
    pub admin: String,
}

impl Scopes {
    /// [`CUSTOMER_SCOPE_VAR`] and [`ADMIN_SCOPE_VAR`]; both required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Scopes {
            customer: required(CUSTOMER_SCOPE_VAR)?,
            admin: required(ADMIN_SCOPE_VAR)?,
        })
    }
}

/// The authenticated caller, as the HTTP API's JWT authorizer put it in the request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The `sub` claim.
    pub sub: String,
    /// OAuth scopes from the authorizer (`scopes`) and the token's `scope` / `scp` claims.
    pub scopes: Vec<String>,
    /// Whether the caller has the admin scope.
    pub admin: bool,
}

impl Caller {
    /// The caller of `request`: 401 when the authorizer left no `sub` claim, 403 when the token
    /// lacks the customer scope (the HTTP API refuses those already; this holds without it).
    pub fn from_request(request: &Request, scopes: &Scopes) -> Result<Caller, ApiError> {
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            return Err(ApiError::Unauthorized);
        };
        let jwt = context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .ok_or(ApiError::Unauthorized)?;
        let sub = jwt
            .claims
            .get("sub")
            .filter(|s| !s.trim().is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let mut granted: Vec<String> = jwt.scopes.clone().unwrap_or_default();
        for claim in ["scope", "scp"] {
            if let Some(value) = jwt.claims.get(claim) {
                granted.extend(claim_scopes(value));
            }
        }
        let has = |scope: &str| granted.iter().any(|s| s == scope);
        if !has(&scopes.customer) {
            return Err(ApiError::Forbidden);
        }
        let admin = has(&scopes.admin);
        Ok(Caller {
            sub: sub.clone(),
            scopes: granted,
            admin,
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The scopes of a `scope` or `scp` claim as the authorizer passes claims: a space-separated
/// string, or an array rendered as `[a b]`.
fn claim_scopes(value: &str) -> impl Iterator<Item = String> + '_ {
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    value.split_whitespace().map(str::to_owned)
}

/// What every handler gets besides the request: ids for logs, problems and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// From the `x-correlation-id` header when it is sane, else the API request id.
    pub correlation_id: String,
    /// API Gateway's request id (or Lambda's, when invoked directly).
    pub request_id: String,
}

impl RequestMeta {
    pub fn from_request(request: &Request) -> Self {
        let api_request_id = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        };
        let request_id = api_request_id
            .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let correlation_id = request
            .headers()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_id(v))
            .map_or_else(|| request_id.clone(), str::to_owned);
        RequestMeta {
            correlation_id,
            request_id,
        }
    }
}

/// A client-supplied id we are willing to log and propagate.
fn is_sane_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Runs `handler` for one request of `service` and turns its error into problem+json; sets
/// the correlation id on the span and on the response, and counts the response (and whether
/// it is a 5xx) per function version: a 500 is a successful invocation, so Lambda's `Errors`
/// never sees it, and a deployment's rollback alarm watches this count instead.
pub async fn respond<F, Fut>(service: &str, request: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request, RequestMeta) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let meta = RequestMeta::from_request(&request);
    telemetry::record_correlation_id(&meta.correlation_id);
    let correlation_id = meta.correlation_id.clone();
    let instance = meta.request_id.clone();
    let outcome = if request.body().len() > MAX_BODY_BYTES {
        Err(ApiError::PayloadTooLarge {
            max_bytes: MAX_BODY_BYTES,
        })
    } else {
        handler(request, meta).await
    };
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => problem_response(&error, &instance),
    };
    if let Ok(value) = correlation_id.parse() {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    let server_error = response.status().is_server_error();
    metrics::emit_per_version(
        service,
        &[
            Metric::count("Responses", 1),
            Metric::count("Responses5xx", u32::from(server_error)),
        ],
    );
    response
}

/// Serves `handler` as a Lambda function, each invocation in its own log span.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(service_fn(|request: Request| {
        let (request_id, trace_header) = request
            .lambda_context_ref()
            .map(|c| (c.request_id.clone(), c.xray_trace_id.clone()))
            .unwrap_or_default();
        let response = handler(request);
        telemetry::invocation(&request_id, trace_header.as_deref(), async move {
            Ok::<_, std::convert::Infallible>(response.await)
        })
    }))
    .await
}

/// The JSON body of `request` as `T`: 415 unless it is JSON, 400 when it does not parse or
/// has unknown fields, naming the field by its path (`lines[1].quantity`). serde's message may
/// quote the client's input (an unexpected string, an unknown field's name), so it and the path
/// are cut to [`MAX_DETAIL_CHARS`].
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    let malformed = |path: String, message: String| {
        let field = if path == "." {
            "(body)".to_owned()
        } else {
            path
        };
        ApiError::MalformedBody(crate::error::FieldError::new(
            cut(&field, MAX_DETAIL_CHARS),
            cut(&message, MAX_DETAIL_CHARS),
        ))
    };
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut json)
        .map_err(|e| malformed(e.path().to_string(), e.into_inner().to_string()))?;
    json.end()
        .map_err(|e| malformed(".".to_owned(), e.to_string()))?;
    Ok(value)
}

/// `text` cut to at most `max` characters, with `…` when something was cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: u16, body: &T) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(body).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

/// The problem+json response for `error`.
pub fn problem_response(error: &ApiError, instance: &str) -> Response<Body> {
    let problem = error.problem(Some(instance));
    let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".to_owned());
    let mut builder = Response::builder()
        .status(problem.status)
        .header(http::header::CONTENT_TYPE, "application/problem+json");
    if let ApiError::MethodNotAllowed(allowed) = error {
        builder = builder.header(http::header::ALLOW, allowed.join(", "));
    }
    if let ApiError::TooManyRequests { retry_after } = error {
        builder = builder.header(http::header::RETRY_AFTER, retry_after.to_string());
    }
    builder.body(Body::Text(body)).unwrap_or_else(|_| {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[Route] = &[
        Route::new("POST", "/v1/orders", &[201]),
        Route::new("GET", "/v1/orders", &[200]),
        Route::new("GET", "/v1/orders/{id}", &[200]),
        Route::new("POST", "/v1/orders/{id}/cancel", &[200]),
    ];

    #[test]
    fn routes_match_with_their_parameters() {
        let matched = match_route(ROUTES, "POST", "/v1/orders/abc/cancel").unwrap();
        assert_eq!(matched.route.path, "/v1/orders/{id}/cancel");
        assert_eq!(matched.param("id"), "abc");
        assert_eq!(
            match_route(ROUTES, "GET", "/v1/orders/")
                .unwrap()
                .route
                .path,
            "/v1/orders"
        );
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_are_405() {
        assert!(matches!(
            match_route(ROUTES, "GET", "/v1/nope"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            match_route(ROUTES, "DELETE", "/v1/orders/abc"),
            Err(ApiError::MethodNotAllowed(methods)) if methods == ["GET"]
        ));
        assert!(matches!(
            match_route(ROUTES, "GET", "/v1/orders//cancel"),
            Err(ApiError::NotFound(_))
        ));
    }

    fn scopes() -> Scopes {
        Scopes {
            customer: "shop/orders".into(),
            admin: "shop/admin".into(),
        }
    }

    /// An API Gateway v2 request for `GET /v1/orders`.
    fn request() -> Request {
        request_with_claims(&serde_json::json!({"sub": "alice", "scope": "shop/orders"}))
    }

    /// An API Gateway v2 request for `GET /v1/orders` with the authorizer's `claims`.
    fn request_with_claims(claims: &serde_json::Value) -> Request {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /v1/orders", "rawPath": "/v1/orders",
            "rawQueryString": "", "headers": {},
            "requestContext": {
                "http": {"method": "GET", "path": "/v1/orders", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "test"},
                "routeKey": "GET /v1/orders", "stage": "$default", "requestId": "r-1",
                "authorizer": {"jwt": {"claims": claims}}
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    /// The captured EMF documents holding `metric`.
    fn with_metric<'a>(docs: &'a [serde_json::Value], metric: &str) -> Vec<&'a serde_json::Value> {
        docs.iter().filter(|d| d.get(metric).is_some()).collect()
    }

    #[tokio::test]
    async fn a_500_response_emits_a_5xx_count_for_the_running_function_version() {
        crate::metrics::capture::start("shop-dev-orders-http", "7");
        let response = respond("orders", request(), |_, _| async {
            Err::<Response<Body>, _>(ApiError::internal(std::io::Error::other("boom")))
        })
        .await;
        let docs = crate::metrics::capture::take();
        assert_eq!(response.status(), 500);
        let docs = with_metric(&docs, "Responses5xx");
        assert_eq!(
            docs.len(),
            1,
            "one EMF document with Responses5xx: {docs:?}"
        );
        let doc = docs[0];
        assert_eq!(doc["Responses5xx"], 1.0);
        assert_eq!(doc["Responses"], 1.0);
        assert_eq!(doc["function"], "shop-dev-orders-http");
        assert_eq!(doc["version"], "7");
        assert!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(["function", "version"])),
            "{doc}"
        );
    }

    #[tokio::test]
    async fn a_4xx_response_is_counted_but_not_as_a_5xx() {
        crate::metrics::capture::start("shop-dev-orders-http", "7");
        let response = respond("orders", request(), |_, _| async {
            Err::<Response<Body>, _>(ApiError::NotFound("order"))
        })
        .await;
        let docs = crate::metrics::capture::take();
        assert_eq!(response.status(), 404);
        let docs = with_metric(&docs, "Responses");
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0]["Responses"], 1.0);
        assert_eq!(docs[0]["Responses5xx"], 0.0);
    }

    #[test]
    fn a_token_without_the_customer_scope_is_forbidden() {
        for claims in [
            serde_json::json!({"sub": "alice"}),
            serde_json::json!({"sub": "alice", "scope": "shop/admin"}),
            serde_json::json!({"sub": "alice", "scope": "shop/orders-extra other/orders"}),
            serde_json::json!({"sub": "alice", "token_use": "id", "aud": "client"}),
        ] {
            let result = Caller::from_request(&request_with_claims(&claims), &scopes());
            assert!(
                matches!(result, Err(ApiError::Forbidden)),
                "{claims}: {result:?}"
            );
        }
    }

    #[test]
    fn the_scopes_come_from_the_scope_or_scp_claim_and_admin_needs_the_configured_admin_scope() {
        let caller =
            |claims| Caller::from_request(&request_with_claims(&claims), &scopes()).unwrap();
        assert!(!caller(serde_json::json!({"sub": "a", "scope": "shop/orders"})).admin);
        assert!(caller(serde_json::json!({"sub": "a", "scope": "shop/orders shop/admin"})).admin);
        assert!(caller(serde_json::json!({"sub": "a", "scp": "[shop/orders shop/admin]"})).admin);
        let renamed = Scopes {
            customer: "store/orders".into(),
            admin: "store/admin".into(),
        };
        let request = request_with_claims(
            &serde_json::json!({"sub": "a", "scope": "store/orders store/admin"}),
        );
        assert!(Caller::from_request(&request, &renamed).unwrap().admin);
        let request = request_with_claims(
            &serde_json::json!({"sub": "a", "scope": "store/orders shop/admin"}),
        );
        assert!(!Caller::from_request(&request, &renamed).unwrap().admin);
    }

    #[test]
    fn missing_scope_settings_are_named() {
        // The test process runs outside Lambda: neither variable is set.
        assert_eq!(
            Scopes::from_env(),
            Err(ConfigError::Missing(CUSTOMER_SCOPE_VAR))
        );
    }

    /// A `POST /v1/orders` request with `body`.
    fn post(body: &str) -> Request {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "POST /v1/orders", "rawPath": "/v1/orders",
            "rawQueryString": "", "headers": {"content-type": "application/json"},
            "requestContext": {
                "http": {"method": "POST", "path": "/v1/orders", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "test"},
                "routeKey": "POST /v1/orders", "stage": "$default", "requestId": "r-1",
            },
            "body": body, "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        lines: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: u32,
    }

    #[test]
    fn a_malformed_body_names_the_field_and_never_echoes_a_100_kb_string() {
        let huge = "x".repeat(100_000);
        let body = serde_json::json!({"lines": [{"quantity": 1}, {"quantity": huge}]});
        let Err(error) = json_body::<Shape>(&post(&body.to_string())) else {
            panic!("a string quantity must be refused")
        };
        let problem = serde_json::to_string(&error.problem(Some("r-1"))).unwrap();
        assert_eq!(error.status(), 400);
        assert!(problem.len() < 1_000, "{} bytes", problem.len());
        assert!(problem.contains("lines[1].quantity"), "{problem}");
        assert!(problem.contains("invalid type: string"), "{problem}");

        let mut unknown = serde_json::Map::new();
        unknown.insert(huge, serde_json::json!(1));
        let Err(error) = json_body::<Shape>(&post(&serde_json::Value::Object(unknown).to_string()))
        else {
            panic!("an unknown field must be refused")
        };
        let problem = serde_json::to_string(&error.problem(None)).unwrap();
        assert!(problem.len() < 1_000, "{} bytes", problem.len());

        let Err(error) = json_body::<Shape>(&post(r#"{"lines": []} trailing"#)) else {
            panic!("trailing characters must be refused")
        };
        assert_eq!(error.status(), 400);
    }

    #[tokio::test]
    async fn a_body_above_the_limit_is_answered_413_without_running_the_handler() {
        let response = respond(
            "orders",
            post(&"x".repeat(MAX_BODY_BYTES + 1)),
            |_, _| async { panic!("the handler must not run") },
        )
        .await;
        assert_eq!(response.status(), 413);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn details_are_cut_on_a_character_boundary() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "abc…");
        assert_eq!(cut("ééé", 2), "éé…");
    }

    #[test]
    fn a_429_carries_retry_after() {
        let response = problem_response(&ApiError::TooManyRequests { retry_after: 7 }, "r");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "7");
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn only_sane_correlation_ids_are_accepted() {
        assert!(is_sane_id("abc-123_x.y:z"));
        assert!(!is_sane_id(""));
        assert!(!is_sane_id("a b"));
        assert!(!is_sane_id(&"x".repeat(129)));
    }
}
