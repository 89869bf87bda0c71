//! The notify domain: pure rules, no AWS or Lambda types.

mod notification;
mod templates;

pub use kit::ids::CustomerId;
pub use notification::{Notification, NotificationId};
pub use templates::{Draft, Template, compose};
