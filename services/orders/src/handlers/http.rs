//! The orders HTTP API (API Gateway HTTP API, payload v2). Routes are declared once in
//! [`ROUTES`]: the router dispatches on them and tests hold them against the template and the
//! OpenAPI document.

use chrono::{DateTime, Utc};
use kit::{
    error::{ApiError, FieldError},
    events::{CancellationReason, Envelope, Event, OrderLine},
    http::{Caller, Matched, RequestMeta, Route, Scopes, json_body, json_response, match_route},
    idempotency::{self, Key},
    money::Money,
    rate_limit::Decision,
};
use lambda_http::{Body, Request, RequestExt, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use crate::{
    EVENT_SOURCE,
    domain::{CustomerId, Order, OrderId, PlaceOrder, Status},
    ports::{IdempotentResponse, OrderRepository, RepositoryError},
};

/// Every status each route can answer with (413: any body above `kit::http::MAX_BODY_BYTES`).
const PLACE: &[u16] = &[201, 400, 401, 403, 409, 413, 415, 422, 429, 500];
const LIST: &[u16] = &[200, 400, 401, 403, 413, 500];
const READ: &[u16] = &[200, 401, 403, 404, 413, 500];
const CANCEL: &[u16] = &[200, 401, 403, 404, 409, 413, 429, 500];

/// Every route of the orders API.
pub const ROUTES: &[Route] = &[
    Route::new("POST", "/v1/orders", PLACE),
    Route::new("GET", "/v1/orders", LIST),
    Route::new("GET", "/v1/orders/{id}", READ),
    Route::new("POST", "/v1/orders/{id}/cancel", CANCEL),
];

/// Header of a client's idempotency key on `POST /v1/orders`.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set on a response replayed for a repeated `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Attempts of a cancel that races with a payment event.
const CANCEL_ATTEMPTS: usize = 3;
/// Attempts of a place that DynamoDB cancelled for a concurrent transaction on the same items
/// (the customer's open-order set: two of its orders placed at once).
const PLACE_ATTEMPTS: usize = 3;
/// The problem type of a refused order when its customer has too many open ones.
pub const TOO_MANY_OPEN_ORDERS: &str = "too-many-open-orders";

/// An order as clients see it (no card token, no internal version): `Order` in
/// docs/openapi.yaml.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrderView<'a> {
    id: &'a str,
    customer_id: &'a str,
    status: Status,
    lines: &'a [OrderLine],
    total: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<CancellationReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_detail: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(order: &'a Order) -> Self {
        OrderView {
            id: order.id.as_str(),
            customer_id: order.customer_id.as_str(),
            status: order.status,
            lines: &order.lines,
            total: order.total,
            cancellation_reason: order.cancellation_reason,
            cancellation_detail: order.cancellation_detail.as_deref(),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// Handles one HTTP request; errors become problem+json here and nowhere else.
pub async fn handle<R: OrderRepository>(
    orders: &R,
    scopes: &Scopes,
    request: Request,
) -> Response<Body> {
    kit::http::respond(crate::SERVICE, request, |request, meta| {
        route(orders, scopes, request, meta)
    })
    .await
}

async fn route<R: OrderRepository>(
    orders: &R,
    scopes: &Scopes,
    request: Request,
    meta: RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let matched = match_route(ROUTES, request.method().as_str(), request.raw_http_path())?;
    let caller = Caller::from_request(&request, scopes)?;
    match (matched.route.method, matched.route.path) {
        ("POST", "/v1/orders") => place(orders, &request, &caller, &meta).await,
        ("GET", "/v1/orders") => list(orders, &request, &caller).await,
        ("GET", "/v1/orders/{id}") => read(orders, &matched, &caller).await,
        ("POST", "/v1/orders/{id}/cancel") => cancel(orders, &matched, &caller, &meta).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

/// The envelope of an event caused by this request.
fn event_envelope(
    event: &Event,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Envelope, ApiError> {
    Envelope::new(
        EVENT_SOURCE,
        event,
        &meta.correlation_id,
        Some(&meta.request_id),
        now,
    )
    .map_err(ApiError::internal)
}

fn unavailable(error: RepositoryError) -> ApiError {
    ApiError::internal(error)
}

fn violations(list: Vec<crate::domain::Violation>) -> ApiError {
    ApiError::Validation(
        list.into_iter()
            .map(|v| FieldError::new(v.field, v.message))
            .collect(),
    )
}

async fn place<R: OrderRepository>(
    orders: &R,
    request: &Request,
    caller: &Caller,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let body: PlaceOrder = json_body(request)?;
    let new_order = body.validate().map_err(violations)?;
    let idempotency = match request.headers().get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(value) => {
            let raw = value.to_str().map_err(|_| {
                ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())
            })?;
            let key = Key::for_caller("orders-http", &caller.sub, raw)
                .map_err(|e| ApiError::BadRequest(format!("Idempotency-Key: {e}")))?;
            let fingerprint =
                idempotency::fingerprint(&[b"POST /v1/orders", request.body().as_ref()]);
            if let Some(record) = orders.idempotency_record(&key).await.map_err(unavailable)? {
                return replay(&record, &fingerprint);
            }
            Some((key, fingerprint))
        }
    };

    let now = Utc::now();
    let customer = CustomerId::new(&caller.sub);
    count_write(orders, &customer, now).await?;
    let (mut order, event) = Order::place(OrderId::generate(), customer, new_order, now);
    order.correlation_id = Some(meta.correlation_id.clone());
    let envelope = event_envelope(&event, meta, now)?;
    let body = serde_json::to_value(OrderView::from(&order)).map_err(ApiError::internal)?;
    let stored = idempotency.map(|(key, fingerprint)| IdempotentResponse {
        key,
        fingerprint,
        response: json!({ "status": 201, "body": body }),
    });
    let mut inserted = orders
        .insert(&order, std::slice::from_ref(&envelope), stored.as_ref())
        .await;
    for _ in 1..PLACE_ATTEMPTS {
        if !matches!(inserted, Err(RepositoryError::Conflict)) {
            break;
        }
        // Nothing was written: the same order may be tried again.
        inserted = orders
            .insert(&order, std::slice::from_ref(&envelope), stored.as_ref())
            .await;
    }
    match inserted {
        Ok(()) => {}
        Err(RepositoryError::TooManyOpenOrders { max }) => {
            return Err(ApiError::LimitReached {
                kind: TOO_MANY_OPEN_ORDERS,
                detail: format!(
                    "You have {max} open orders already (the most allowed); place this one \
                     when one of them is confirmed or cancelled."
                ),
            });
        }
        Err(RepositoryError::IdempotencyKeyTaken) => {
            // A concurrent request with the same key won the race: answer as it did.
            let stored = stored
                .as_ref()
                .ok_or_else(|| ApiError::internal(RepositoryError::IdempotencyKeyTaken))?;
            let record = orders
                .idempotency_record(&stored.key)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    ApiError::Conflict("a request with this Idempotency-Key is in progress".into())
                })?;
            return replay(&record, &stored.fingerprint);
        }
        Err(RepositoryError::Conflict) => {
            return Err(ApiError::Conflict(
                "a concurrent request was placing this order; retry".into(),
            ));
        }
        Err(error) => return Err(unavailable(error)),
    }
    tracing::info!(order_id = %order.id, total = %order.total, "order placed");
    kit::metrics::emit(
        crate::SERVICE,
        &[],
        &[kit::metrics::Metric::count("OrderPlaced", 1)],
    );
    created(&order.id, &body, false)
}

/// Counts a write of `customer`: 429 past the per-customer limit.
async fn count_write<R: OrderRepository>(
    orders: &R,
    customer: &CustomerId,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match orders
        .count_write(customer, now)
        .await
        .map_err(unavailable)?
    {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after } => {
            tracing::info!(retry_after, "customer write limit reached");
            Err(ApiError::TooManyRequests { retry_after })
        }
    }
}

fn created(
    id: &OrderId,
    body: &serde_json::Value,
    replayed: bool,
) -> Result<Response<Body>, ApiError> {
    let mut response = json_response(201, body)?;
    let headers = response.headers_mut();
    if let Ok(location) = format!("/v1/orders/{id}").parse() {
        headers.insert(http::header::LOCATION, location);
    }
    if replayed {
        headers.insert(REPLAYED_HEADER, http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The stored response for a repeated key, or 422 when the key came with another body.
fn replay(record: &idempotency::Record, fingerprint: &str) -> Result<Response<Body>, ApiError> {
    if record.fingerprint != fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let body = record
        .response
        .as_ref()
        .and_then(|r| r.get("body"))
        .ok_or_else(|| {
            ApiError::Conflict("a request with this Idempotency-Key is in progress".into())
        })?;
    let id = body
        .get("id")
        .and_then(|id| id.as_str())
        .and_then(OrderId::parse)
        .ok_or_else(|| {
            ApiError::Conflict("the stored response for this Idempotency-Key is unreadable".into())
        })?;
    created(&id, body, true)
}

async fn list<R: OrderRepository>(
    orders: &R,
    request: &Request,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let (limit, after) = kit::page::params(request)?;
    let page = orders
        .list_for_customer(&CustomerId::new(&caller.sub), limit, after.as_deref())
        .await
        .map_err(unavailable)?;
    let items: Vec<OrderView<'_>> = page.orders.iter().map(OrderView::from).collect();
    json_response(
        200,
        &kit::page::Page {
            items,
            next_cursor: page.next,
        },
    )
}

/// The order if the caller may see it: its owner, or an admin. Anyone else gets 404, as if it
/// did not exist.
async fn visible_order<R: OrderRepository>(
    orders: &R,
    matched: &Matched,
    caller: &Caller,
    admin_allowed: bool,
) -> Result<Order, ApiError> {
    let id = OrderId::parse(matched.param("id")).ok_or(ApiError::NotFound("order"))?;
    let order = orders
        .get(&id)
        .await
        .map_err(unavailable)?
        .ok_or(ApiError::NotFound("order"))?;
    let allowed = order.customer_id.as_str() == caller.sub || (admin_allowed && caller.admin);
    if allowed {
        Ok(order)
    } else {
        Err(ApiError::NotFound("order"))
    }
}

async fn read<R: OrderRepository>(
    orders: &R,
    matched: &Matched,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let order = visible_order(orders, matched, caller, true).await?;
    json_response(200, &OrderView::from(&order))
}

async fn cancel<R: OrderRepository>(
    orders: &R,
    matched: &Matched,
    caller: &Caller,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let mut counted = false;
    for _ in 0..CANCEL_ATTEMPTS {
        let mut order = visible_order(orders, matched, caller, false).await?;
        let expected = order.version;
        let now = Utc::now();
        let event = order.cancel(now).map_err(|e| {
            ApiError::Conflict(format!(
                "the order is {} and cannot be cancelled",
                e.from.as_str()
            ))
        })?;
        if !counted {
            count_write(orders, &order.customer_id, now).await?;
            counted = true;
        }
        let envelope = event_envelope(&event, meta, now)?;
        match orders.update(&order, expected, &[envelope], None).await {
            Ok(()) => {
                tracing::info!(order_id = %order.id, "order cancelled by the customer");
                return json_response(200, &OrderView::from(&order));
            }
            Err(RepositoryError::VersionConflict) => continue,
            Err(error) => return Err(unavailable(error)),
        }
    }
    Err(ApiError::Conflict("the order is changing; retry".into()))
}
