//! The payments service: charges placed orders through a [`ports::PaymentProvider`], refunds
//! the payments of cancelled orders, publishes the outcomes through the outbox, and lets a
//! customer read the payment of their order over HTTP.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod ports;

/// The service name in logs and metrics.
pub const SERVICE: &str = "payments";
/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = kit::events::PAYMENTS_SOURCE;
