//! The notify HTTP API (API Gateway HTTP API, payload v2): a customer lists their own
//! notifications. Routes are declared once in [`ROUTES`]: the router dispatches on them and
//! tests hold them against the template and the OpenAPI document.

use chrono::{DateTime, Utc};
use kit::{
    error::ApiError,
    http::{Caller, RequestMeta, Route, Scopes, json_response, match_route},
};
use lambda_http::{Body, Request, RequestExt, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{
    domain::{CustomerId, Notification, Template},
    ports::NotificationLog,
};

const LIST: &[u16] = &[200, 400, 401, 403, 413, 500];

/// Every route of the notify API.
pub const ROUTES: &[Route] = &[Route::new("GET", "/v1/notifications", LIST)];

/// A notification as its owner sees it: `Notification` in docs/openapi.yaml.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NotificationView<'a> {
    id: &'a str,
    order_id: &'a str,
    template: Template,
    about: &'a str,
    channel: &'a str,
    subject: &'a str,
    body: &'a str,
    sent_at: DateTime<Utc>,
}

impl<'a> From<&'a Notification> for NotificationView<'a> {
    fn from(n: &'a Notification) -> Self {
        NotificationView {
            id: n.id.as_str(),
            order_id: &n.order_id,
            template: n.template,
            about: &n.about,
            channel: &n.channel,
            subject: &n.subject,
            body: &n.body,
            sent_at: n.sent_at,
        }
    }
}

/// Handles one HTTP request; errors become problem+json here and nowhere else.
pub async fn handle<L: NotificationLog>(
    log: &L,
    scopes: &Scopes,
    request: Request,
) -> Response<Body> {
    kit::http::respond(crate::SERVICE, request, |request, meta| {
        route(log, scopes, request, meta)
    })
    .await
}

async fn route<L: NotificationLog>(
    log: &L,
    scopes: &Scopes,
    request: Request,
    _meta: RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let matched = match_route(ROUTES, request.method().as_str(), request.raw_http_path())?;
    let caller = Caller::from_request(&request, scopes)?;
    match (matched.route.method, matched.route.path) {
        ("GET", "/v1/notifications") => list(log, &request, &caller).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

async fn list<L: NotificationLog>(
    log: &L,
    request: &Request,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let (limit, after) = kit::page::params(request)?;
    let page = log
        .list_for_customer(&CustomerId::new(&caller.sub), limit, after.as_deref())
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<NotificationView<'_>> = page
        .notifications
        .iter()
        .map(NotificationView::from)
        .collect();
    json_response(
        200,
        &kit::page::Page {
            items,
            next_cursor: page.next,
        },
    )
}
