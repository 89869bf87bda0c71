//! Settings of the notify functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, TableConfig},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The notify table (notifications, outbox, processed-event markers).
pub const TABLE_VAR: &str = "NOTIFY_TABLE";

/// Every notify function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "notify-http",
        vars: &[TABLE_VAR, CUSTOMER_SCOPE_VAR, ADMIN_SCOPE_VAR],
    },
    FunctionEnv {
        binary: "notify-events",
        vars: &[TABLE_VAR],
    },
    kit::relay::FUNCTION,
];

/// Settings of the HTTP and events functions: the notify table.
pub fn from_env() -> Result<TableConfig, ConfigError> {
    TableConfig::from_env(TABLE_VAR)
}
