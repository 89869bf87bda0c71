//! Settings of the orders functions, read once at start.

use kit::{
    config::FunctionEnv,
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The orders table (orders, outbox, idempotency records).
pub const TABLE_VAR: &str = "ORDERS_TABLE";

/// Every orders function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "orders-http",
        vars: &[TABLE_VAR, CUSTOMER_SCOPE_VAR, ADMIN_SCOPE_VAR],
    },
    FunctionEnv {
        binary: "orders-events",
        vars: &[TABLE_VAR],
    },
    FunctionEnv {
        binary: "orders-relay",
        vars: kit::relay::ENV_VARS,
    },
];
