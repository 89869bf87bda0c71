//! The payments domain: pure rules, no AWS or Lambda types.

mod payment;
mod simulator;

pub use kit::ids::{CustomerId, OrderId};
pub use payment::{ChargeOutcome, Payment, Status, TransitionError, payment_id};
pub use simulator::{CardToken, Decision, Operation, UNKNOWN_TOKEN_REASON};
