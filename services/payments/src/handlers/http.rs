//! The payments HTTP API (API Gateway HTTP API, payload v2): the payment of an order, for its
//! owner or an admin. Routes are declared once in [`ROUTES`]: the router dispatches on them
//! and tests hold them against the template and the OpenAPI document.

use chrono::{DateTime, Utc};
use kit::{
    error::ApiError,
    http::{Caller, Route, Scopes, json_response, match_route},
    money::Money,
};
use lambda_http::{Body, Request, RequestExt, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{
    domain::{OrderId, Payment, Status},
    ports::PaymentRepository,
};

const READ: &[u16] = &[200, 401, 403, 404, 413, 500];

/// Every route of the payments API.
pub const ROUTES: &[Route] = &[Route::new("GET", "/v1/payments/{orderId}", READ)];

/// A payment as clients see it (no provider reference, no internal version): `Payment` in
/// docs/openapi.yaml.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PaymentView<'a> {
    order_id: &'a str,
    payment_id: &'a str,
    customer_id: &'a str,
    status: Status,
    amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_reason: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Payment> for PaymentView<'a> {
    fn from(payment: &'a Payment) -> Self {
        PaymentView {
            order_id: payment.order_id.as_str(),
            payment_id: &payment.payment_id,
            customer_id: payment.customer_id.as_str(),
            status: payment.status,
            amount: payment.amount,
            decline_reason: payment.decline_reason.as_deref(),
            created_at: payment.created_at,
            updated_at: payment.updated_at,
        }
    }
}

/// Handles one HTTP request; errors become problem+json here and nowhere else.
pub async fn handle<R: PaymentRepository>(
    payments: &R,
    scopes: &Scopes,
    request: Request,
) -> Response<Body> {
    kit::http::respond(crate::SERVICE, request, |request, _meta| {
        read(payments, scopes, request)
    })
    .await
}

/// `GET /v1/payments/{orderId}`: the payment if the caller may see it — its owner, or an
/// admin. Anyone else gets 404, as if it did not exist.
async fn read<R: PaymentRepository>(
    payments: &R,
    scopes: &Scopes,
    request: Request,
) -> Result<Response<Body>, ApiError> {
    let matched = match_route(ROUTES, request.method().as_str(), request.raw_http_path())?;
    let caller = Caller::from_request(&request, scopes)?;
    let id = OrderId::parse(matched.param("orderId")).ok_or(ApiError::NotFound("payment"))?;
    let payment = payments
        .get(&id)
        .await
        .map_err(ApiError::internal)?
        .filter(|p| p.customer_id.as_str() == caller.sub || caller.admin)
        .ok_or(ApiError::NotFound("payment"))?;
    json_response(200, &PaymentView::from(&payment))
}
