//! Settings of the __name__ functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, TableConfig},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The __name__ table (records, outbox, processed-event markers).
pub const TABLE_VAR: &str = "__NAME___TABLE";

/// Every __name__ function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "__name__-http",
        vars: &[TABLE_VAR, CUSTOMER_SCOPE_VAR, ADMIN_SCOPE_VAR],
    },
    FunctionEnv {
        binary: "__name__-events",
        vars: &[TABLE_VAR],
    },
    kit::relay::FUNCTION,
];

/// Settings of the HTTP and events functions: the __name__ table.
pub fn from_env() -> Result<TableConfig, ConfigError> {
    TableConfig::from_env(TABLE_VAR)
}
