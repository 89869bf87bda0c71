//! Entry points: the HTTP API and the event consumer.

pub mod events;
pub mod http;
