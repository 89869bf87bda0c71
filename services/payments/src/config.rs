//! Settings of the payments functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, optional, parsed_or, required},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The payments table (payments, simulator ledger, outbox, processed-event markers).
pub const TABLE_VAR: &str = "PAYMENTS_TABLE";
/// Which payment provider adapter the events function uses; only `simulator` is built in.
pub const PROVIDER_VAR: &str = "PAYMENT_PROVIDER";
/// `true` makes the simulator approve `tok_unavailable` (the provider "came back"), to prove
/// that messages redriven from the DLQ then succeed.
pub const SIMULATOR_RECOVERED_VAR: &str = "PAYMENT_SIMULATOR_RECOVERED";

/// Every payments function binary and the variables its config reads.
pub const FUNCTIONS: &[FunctionEnv] = &[
    FunctionEnv {
        binary: "payments-http",
        vars: &[TABLE_VAR, CUSTOMER_SCOPE_VAR, ADMIN_SCOPE_VAR],
    },
    FunctionEnv {
        binary: "payments-events",
        vars: &[TABLE_VAR, PROVIDER_VAR, SIMULATOR_RECOVERED_VAR],
    },
    FunctionEnv {
        binary: "payments-relay",
        vars: kit::relay::ENV_VARS,
    },
];

/// Settings of the HTTP function.
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

/// The payment provider the events function charges through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The deterministic simulator (see the service README for its card tokens).
    Simulator { recovered: bool },
}

/// Settings of the events function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub table: String,
    pub provider: Provider,
}

impl EventsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let provider = match optional(PROVIDER_VAR)?.as_deref().unwrap_or("simulator") {
            "simulator" => Provider::Simulator {
                recovered: parsed_or(SIMULATOR_RECOVERED_VAR, false)?,
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: PROVIDER_VAR,
                    reason: format!("unknown provider `{other}` (built in: simulator)"),
                });
            }
        };
        Ok(EventsConfig {
            table: required(TABLE_VAR)?,
            provider,
        })
    }
}
