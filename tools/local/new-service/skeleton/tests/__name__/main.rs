//! Integration tests of the __name__ service, built into one binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod dynamodb;
mod events;
mod helpers;
mod http;
mod openapi;
mod template;
