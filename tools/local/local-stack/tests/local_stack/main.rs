//! The local stack against the real template and the real function binaries: one test binary,
//! one moto server (testkit), one resource-name prefix per test.
//!
//! Test code: a broken precondition panics with a message saying what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cadence;
mod crash;
mod helpers;
mod http_api;
mod invoke;
mod kills;
mod own_moto;
mod pipeline;
mod saga_page;
mod schedules;
mod sqs_mapping;
