//! Integration tests of the orders service, built into one binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value,
    unreachable_pub
)]

mod contract;
mod dynamodb;
mod edges;
mod events;
mod helpers;
mod http;
mod openapi;
mod outbox_delivery;
mod template;
mod timeout;
