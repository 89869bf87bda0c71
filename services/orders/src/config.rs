//! Settings of the orders functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, parsed_or, required},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The orders table (orders, outbox, idempotency records).
pub const TABLE_VAR: &str = "ORDERS_TABLE";
/// Minutes an order may stay PENDING before the saga timeout cancels it
/// (template parameter `SagaTimeoutMinutes`).
pub const SAGA_TIMEOUT_VAR: &str = "SAGA_TIMEOUT_MINUTES";
/// The saga timeout when the variable is unset.
pub const DEFAULT_SAGA_TIMEOUT_MINUTES: u32 = 15;

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
    FunctionEnv {
        binary: "orders-timeout",
        vars: &[TABLE_VAR, SAGA_TIMEOUT_VAR],
    },
];

/// Settings of the saga timeout function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutConfig {
    pub table: String,
    /// How long an order may stay PENDING.
    pub timeout: chrono::Duration,
}

impl TimeoutConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let minutes: u32 = parsed_or(SAGA_TIMEOUT_VAR, DEFAULT_SAGA_TIMEOUT_MINUTES)?;
        if minutes == 0 {
            return Err(ConfigError::Invalid {
                name: SAGA_TIMEOUT_VAR,
                reason: "must be at least 1 minute".into(),
            });
        }
        Ok(TimeoutConfig {
            table: required(TABLE_VAR)?,
            timeout: chrono::Duration::minutes(i64::from(minutes)),
        })
    }
}
