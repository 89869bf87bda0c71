//! The local stack: runs the whole application from its templates (`infra/platform.yaml` and every
//! `services/*/template.yaml`, read as one by [`stacks`]) without Docker or an
//! AWS account — moto for DynamoDB (with streams), EventBridge and SQS; the real function
//! binaries under an emulation of the Lambda Runtime API; the HTTP API with JWT validation;
//! SQS and DynamoDB stream event source mappings.
//!
//! Integration tests use it as a library: [`Stack::start`] returns the API URL, the moto
//! endpoint and the local resource names, and stops everything it started on drop.

pub mod chaos;
pub mod functions;
pub mod http_api;
pub mod jwt;
pub mod moto;
pub mod openapi;
pub mod page;
pub mod pattern;
pub mod report;
pub mod resources;
pub mod runtime;
pub mod schedule;
pub mod sqs;
pub mod stack;
pub mod stacks;
pub mod streams;
pub mod template;
pub mod timeline;

pub use stack::{Options, Stack};
