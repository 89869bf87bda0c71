//! The error type HTTP handlers return and its one mapping to RFC 9457 problem+json, and the
//! one mapping of event-function errors to Lambda diagnostics.
//!
//! 4xx problems carry a safe, specific `detail`; a 5xx carries a generic body while the whole
//! cause chain goes to the log.

use std::{error::Error as StdError, fmt::Write as _};

use lambda_runtime::Diagnostic;
use schemars::JsonSchema;
use serde::Serialize;

/// What an HTTP handler can fail with. Every variant maps to exactly one status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is not acceptable as sent (400); the detail is ours, never the client's input.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is not valid JSON or not the expected shape (400): where, and serde's message
    /// cut to a bounded length.
    #[error("malformed body at {}", .0.field)]
    MalformedBody(FieldError),
    /// The body is well formed but breaks a rule (422), with one entry per broken rule.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No caller identity in the request context (401).
    #[error("unauthorized")]
    Unauthorized,
    /// The caller lacks a required scope (403).
    #[error("forbidden")]
    Forbidden,
    /// No such resource for this caller (404); also used for other customers' resources.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists but not for this method (405).
    #[error("method not allowed")]
    MethodNotAllowed(Vec<&'static str>),
    /// The request conflicts with the resource's state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The same `Idempotency-Key` was used with a different request (422).
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The body is not JSON (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is larger than the API accepts (413).
    #[error("payload too large")]
    PayloadTooLarge { max_bytes: usize },
    /// The caller reached a limit on what it may hold (409), e.g. its open orders; `kind` is the
    /// problem type's slug.
    #[error("limit reached: {detail}")]
    LimitReached { kind: &'static str, detail: String },
    /// The caller sent too many requests (429); it may retry after `retry_after` seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// Anything else: a 500 whose details are logged, never returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// One broken rule of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FieldError {
    /// JSON pointer-ish path of the field, e.g. `lines[0].quantity`.
    pub field: String,
    /// What is wrong with it, safe to show.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: &'static str,
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// Wraps any error as an internal one (its chain is logged when it is rendered).
    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(error))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::MalformedBody(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) | ApiError::LimitReached { .. } => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Validation(_) | ApiError::IdempotencyKeyReused => 422,
            ApiError::Internal(_) => 500,
        }
    }

    /// The problem body for this error. Internal errors get a generic body; their cause
    /// chain is logged here, once, with the request's correlation id from the current span.
    pub fn problem(&self, instance: Option<&str>) -> Problem {
        let (slug, title, detail, errors) = match self {
            ApiError::BadRequest(detail) => {
                ("bad-request", "Bad request", Some(detail.clone()), vec![])
            }
            ApiError::MalformedBody(error) => (
                "bad-request",
                "Bad request",
                Some("The body is not JSON of the expected shape; see `errors`.".to_owned()),
                vec![error.clone()],
            ),
            ApiError::Validation(errors) => (
                "validation-error",
                "Validation failed",
                Some("The request body breaks one or more rules; see `errors`.".to_owned()),
                errors.clone(),
            ),
            ApiError::Unauthorized => (
                "unauthorized",
                "Unauthorized",
                Some("The request carries no authenticated caller.".to_owned()),
                vec![],
            ),
            ApiError::Forbidden => (
                "forbidden",
                "Forbidden",
                Some("The caller is not allowed to do this.".to_owned()),
                vec![],
            ),
            ApiError::NotFound(what) => (
                "not-found",
                "Not found",
                Some(format!("No such {what}.")),
                vec![],
            ),
            ApiError::MethodNotAllowed(_) => {
                ("method-not-allowed", "Method not allowed", None, vec![])
            }
            ApiError::Conflict(detail) => ("conflict", "Conflict", Some(detail.clone()), vec![]),
            ApiError::IdempotencyKeyReused => (
                "idempotency-key-reused",
                "Idempotency key reused",
                Some("This Idempotency-Key was already used with a different request.".to_owned()),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                Some("Send the body as application/json.".to_owned()),
                vec![],
            ),
            ApiError::PayloadTooLarge { max_bytes } => (
                "payload-too-large",
                "Payload too large",
                Some(format!(
                    "The request body may have at most {max_bytes} bytes."
                )),
                vec![],
            ),
            ApiError::LimitReached { kind, detail } => {
                (*kind, "Limit reached", Some(detail.clone()), vec![])
            }
            ApiError::TooManyRequests { retry_after } => (
                "too-many-requests",
                "Too many requests",
                Some(format!(
                    "Too many writes by this caller; retry after {retry_after} s."
                )),
                vec![],
            ),
            ApiError::Internal(source) => {
                tracing::error!(
                    error.cause_chain = %cause_chain(source.as_ref()),
                    "request failed with an internal error"
                );
                ("internal-error", "Internal server error", None, vec![])
            }
        };
        Problem {
            problem_type: format!("https://problems.serverless-rust-shop.dev/{slug}"),
            title,
            status: self.status(),
            detail,
            instance: instance.map(str::to_owned),
            errors,
        }
    }
}

/// `error: cause: cause …` — the whole chain on one line, for logs.
pub fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(chain, ": {cause}");
        source = cause.source();
    }
    chain
}

/// What an event function (SQS consumer, stream relay) fails with as a whole. Per-message
/// failures are batch item failures, not this; this is for an event that cannot be handled
/// at all, and becomes the Lambda error type/message.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not of the expected shape")]
    Malformed(#[source] serde_json::Error),
    #[error("a dependency failed")]
    Dependency(#[source] Box<dyn StdError + Send + Sync>),
}

impl From<EventError> for Diagnostic {
    fn from(error: EventError) -> Self {
        tracing::error!(error.cause_chain = %cause_chain(&error), "invocation failed");
        let error_type = match error {
            EventError::Malformed(_) => "MalformedEvent",
            EventError::Dependency(_) => "DependencyFailure",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("table orders-prod throttled")]
    struct Secret;

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let problem = ApiError::internal(Secret).problem(Some("req-1"));
        assert_eq!(problem.status, 500);
        let body = serde_json::to_string(&problem).unwrap();
        assert!(!body.contains("orders-prod"), "leaked: {body}");
        assert!(body.contains("req-1"));
    }

    #[test]
    fn validation_errors_list_each_field() {
        let problem =
            ApiError::Validation(vec![FieldError::new("lines", "must not be empty")]).problem(None);
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].field, "lines");
        assert!(problem.problem_type.ends_with("/validation-error"));
    }

    #[test]
    fn every_variant_has_a_distinct_problem_type_for_its_status() {
        let statuses: Vec<u16> = [
            ApiError::BadRequest("x".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden,
            ApiError::NotFound("order"),
            ApiError::MethodNotAllowed(vec!["GET"]),
            ApiError::Conflict("x".into()),
            ApiError::UnsupportedMediaType,
            ApiError::IdempotencyKeyReused,
            ApiError::PayloadTooLarge { max_bytes: 1 },
            ApiError::LimitReached {
                kind: "too-many-things",
                detail: "x".into(),
            },
            ApiError::TooManyRequests { retry_after: 1 },
        ]
        .iter()
        .map(ApiError::status)
        .collect();
        assert_eq!(
            statuses,
            [400, 401, 403, 404, 405, 409, 415, 422, 413, 409, 429]
        );
    }

    #[test]
    fn the_cause_chain_lists_every_source() {
        let error = EventError::Dependency(Box::new(Secret));
        assert_eq!(
            cause_chain(&error),
            "a dependency failed: table orders-prod throttled"
        );
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "DependencyFailure");
    }
}
