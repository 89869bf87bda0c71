//! Settings of the orders functions, read once at start.

use kit::config::{ConfigError, FunctionEnv, required};

/// The orders table (orders, outbox, idempotency records).
pub const TABLE_VAR: &str = "ORDERS_TABLE";

/// Every orders function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "orders-http",
        vars: &[TABLE_VAR],
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

/// Settings of the HTTP and events functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            table: required(TABLE_VAR)?,
        })
    }
}
