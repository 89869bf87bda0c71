//! Entry points: the HTTP API, the event consumer and the scheduled saga timeout.

pub mod events;
pub mod http;
pub mod timeout;
