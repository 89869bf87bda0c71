//! The orders service: customers place, read and cancel orders over HTTP; the service reacts
//! to payment outcomes from its queue and publishes its own events through the outbox.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod ports;

/// The service name in logs and metrics.
pub const SERVICE: &str = "orders";
/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = kit::events::ORDERS_SOURCE;
