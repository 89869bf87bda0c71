//! Settings of the orders functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, parsed_or, required},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
    rate_limit::RateLimit,
};

use crate::ports::Limits;

/// The orders table (orders, outbox, idempotency records).
pub const TABLE_VAR: &str = "ORDERS_TABLE";
/// Minutes an order may stay PENDING before the saga timeout cancels it
/// (template parameter `SagaTimeoutMinutes`).
pub const SAGA_TIMEOUT_VAR: &str = "SAGA_TIMEOUT_MINUTES";
/// The saga timeout when the variable is unset.
pub const DEFAULT_SAGA_TIMEOUT_MINUTES: u32 = 15;

/// Writes (place, cancel) one customer may make per window (template parameter
/// `CustomerWriteLimit`).
pub const WRITE_LIMIT_VAR: &str = "CUSTOMER_WRITE_LIMIT";
/// The window of [`WRITE_LIMIT_VAR`] in seconds (template parameter `CustomerWriteWindowSeconds`).
pub const WRITE_WINDOW_VAR: &str = "CUSTOMER_WRITE_WINDOW_SECONDS";
/// PENDING orders one customer may have at once (template parameter `MaxOpenOrdersPerCustomer`).
pub const MAX_OPEN_ORDERS_VAR: &str = "MAX_OPEN_ORDERS";
/// The defaults of the three, when unset (the template's defaults; a test compares them).
pub const DEFAULT_WRITE_LIMIT: u32 = 30;
pub const DEFAULT_WRITE_WINDOW_SECONDS: u64 = 60;
pub const DEFAULT_MAX_OPEN_ORDERS: u32 = 10;

/// Every orders function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "orders-http",
        vars: &[
            TABLE_VAR,
            CUSTOMER_SCOPE_VAR,
            ADMIN_SCOPE_VAR,
            WRITE_LIMIT_VAR,
            WRITE_WINDOW_VAR,
            MAX_OPEN_ORDERS_VAR,
        ],
    },
    FunctionEnv {
        binary: "orders-events",
        vars: &[TABLE_VAR],
    },
    kit::relay::FUNCTION,
    FunctionEnv {
        binary: "orders-timeout",
        vars: &[TABLE_VAR, SAGA_TIMEOUT_VAR],
    },
];

/// The per-customer limits of orders-http: [`WRITE_LIMIT_VAR`], [`WRITE_WINDOW_VAR`] and
/// [`MAX_OPEN_ORDERS_VAR`], each at least 1.
pub fn limits_from_env() -> Result<Limits, ConfigError> {
    let at_least_one = |name: &'static str, value: u64| {
        if value == 0 {
            Err(ConfigError::Invalid {
                name,
                reason: "must be at least 1".into(),
            })
        } else {
            Ok(value)
        }
    };
    let limit: u32 = parsed_or(WRITE_LIMIT_VAR, DEFAULT_WRITE_LIMIT)?;
    let window: u64 = parsed_or(WRITE_WINDOW_VAR, DEFAULT_WRITE_WINDOW_SECONDS)?;
    let max_open_orders: u32 = parsed_or(MAX_OPEN_ORDERS_VAR, DEFAULT_MAX_OPEN_ORDERS)?;
    at_least_one(WRITE_LIMIT_VAR, u64::from(limit))?;
    at_least_one(WRITE_WINDOW_VAR, window)?;
    at_least_one(MAX_OPEN_ORDERS_VAR, u64::from(max_open_orders))?;
    Ok(Limits {
        writes: RateLimit {
            limit,
            window: std::time::Duration::from_secs(window),
        },
        max_open_orders,
    })
}

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
