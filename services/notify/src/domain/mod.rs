//! The notify domain: pure rules, no AWS or Lambda types.

mod notification;
mod templates;

pub use notification::{CustomerId, Notification, NotificationId};
pub use templates::{Draft, Template, compose};
