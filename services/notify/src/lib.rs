//! The notify service: tells customers what happened to their orders (confirmed, cancelled,
//! refunded) through a [`ports::Notifier`], lets them list their notifications over HTTP, and
//! publishes NotificationSent through the outbox.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod ports;

/// The service name in logs and metrics.
pub const SERVICE: &str = "notify";
/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = kit::events::NOTIFY_SOURCE;
