//! The orders domain: pure rules, no AWS or Lambda types.

mod order;
mod request;

pub use kit::ids::{CustomerId, OrderId};
pub use order::{Order, Status, TransitionError};
pub use request::{
    AMOUNT_CAPS, AmountCaps, DEFAULT_CAPS, LineInput, MAX_LINES, MAX_QUANTITY, MoneyInput,
    NewOrder, PlaceOrder, Violation,
};
