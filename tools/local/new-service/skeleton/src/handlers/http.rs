//! The __name__ HTTP API (API Gateway HTTP API, payload v2): a customer lists their own records.
//! Routes are declared once in [`ROUTES`]: the router dispatches on them and tests hold them
//! against the template and the OpenAPI document (this service's openapi.yaml).

use chrono::{DateTime, Utc};
use kit::{
    error::ApiError,
    money::Money,
    http::{Caller, RequestMeta, Route, Scopes, json_response, match_route},
};
use lambda_http::{Body, Request, RequestExt, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{
    domain::{CustomerId, Record},
    ports::RecordStore,
};

const LIST: &[u16] = &[200, 400, 401, 403, 413, 500];

/// Every route of the __name__ API.
pub const ROUTES: &[Route] = &[Route::new("GET", "/v1/__name__", LIST)];

/// A record as its owner sees it: `__Name__Record` in openapi.yaml.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordView<'a> {
    order_id: &'a str,
    total: &'a Money,
    confirmed_at: DateTime<Utc>,
}

impl<'a> From<&'a Record> for RecordView<'a> {
    fn from(r: &'a Record) -> Self {
        RecordView {
            order_id: &r.order_id,
            total: &r.total,
            confirmed_at: r.confirmed_at,
        }
    }
}

/// Handles one HTTP request; errors become problem+json here and nowhere else.
pub async fn handle<S: RecordStore>(store: &S, scopes: &Scopes, request: Request) -> Response<Body> {
    kit::http::respond(crate::SERVICE, request, |request, meta| {
        route(store, scopes, request, meta)
    })
    .await
}

async fn route<S: RecordStore>(
    store: &S,
    scopes: &Scopes,
    request: Request,
    _meta: RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let matched = match_route(ROUTES, request.method().as_str(), request.raw_http_path())?;
    let caller = Caller::from_request(&request, scopes)?;
    match (matched.route.method, matched.route.path) {
        ("GET", "/v1/__name__") => list(store, &request, &caller).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

async fn list<S: RecordStore>(
    store: &S,
    request: &Request,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let (limit, after) = kit::page::params(request)?;
    let page = store
        .list_for_customer(&CustomerId::new(&caller.sub), limit, after.as_deref())
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<RecordView<'_>> = page.records.iter().map(RecordView::from).collect();
    json_response(
        200,
        &kit::page::Page {
            items,
            next_cursor: page.next,
        },
    )
}
