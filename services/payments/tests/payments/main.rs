//! Integration tests of the payments service, in one binary: the events and HTTP handlers on
//! the in-memory adapters, and the DynamoDB adapter against moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod dynamodb;
mod events;
mod faults;
mod helpers;
mod http;
mod openapi;
mod template;
