//! Settings of the payments functions, read once at start.

use kit::{
    config::{ConfigError, FunctionEnv, optional, parsed_or, required},
    http::{ADMIN_SCOPE_VAR, CUSTOMER_SCOPE_VAR},
};

/// The payments table (payments, simulator ledger, outbox, processed-event markers).
pub const TABLE_VAR: &str = "PAYMENTS_TABLE";
/// Which payment provider adapter the events function uses; only `simulator` is built in.
pub const PROVIDER_VAR: &str = "PAYMENT_PROVIDER";
/// The deployment stage (`dev`, `staging`, `prod`): the simulator is refused in `prod`.
pub const STAGE_VAR: &str = "STAGE";
/// The stage in which no simulated provider may run.
pub const PROD_STAGE: &str = "prod";
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
        vars: &[TABLE_VAR, STAGE_VAR, PROVIDER_VAR, SIMULATOR_RECOVERED_VAR],
    },
    kit::relay::FUNCTION,
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
        let stage = required(STAGE_VAR)?;
        let name = optional(PROVIDER_VAR)?;
        let recovered = parsed_or(SIMULATOR_RECOVERED_VAR, false)?;
        Ok(EventsConfig {
            table: required(TABLE_VAR)?,
            provider: provider(&stage, name.as_deref(), recovered)?,
        })
    }
}

/// The provider named `name` (unset: `simulator`) for `stage`. The simulator approves any
/// `tok_approve` card, so it is refused in [`PROD_STAGE`] (the template's rule
/// `ProdRefusesThePaymentSimulator` refuses it at deploy time too).
fn provider(stage: &str, name: Option<&str>, recovered: bool) -> Result<Provider, ConfigError> {
    match name.unwrap_or("simulator") {
        "simulator" if stage == PROD_STAGE => Err(ConfigError::Invalid {
            name: PROVIDER_VAR,
            reason: format!(
                "the simulator is refused in {PROD_STAGE} ({STAGE_VAR}={stage}): configure a real provider"
            ),
        }),
        "simulator" => Ok(Provider::Simulator { recovered }),
        other => Err(ConfigError::Invalid {
            name: PROVIDER_VAR,
            reason: format!("unknown provider `{other}` (built in: simulator)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_runs_outside_prod() {
        for stage in ["dev", "staging"] {
            assert_eq!(
                provider(stage, Some("simulator"), true),
                Ok(Provider::Simulator { recovered: true })
            );
            assert_eq!(
                provider(stage, None, false),
                Ok(Provider::Simulator { recovered: false })
            );
        }
    }

    #[test]
    fn the_simulator_is_refused_in_prod_whether_named_or_by_default() {
        for name in [Some("simulator"), None] {
            let err = provider(PROD_STAGE, name, false).unwrap_err();
            let ConfigError::Invalid { name: var, reason } = &err else {
                panic!("not an invalid-value error: {err:?}");
            };
            assert_eq!(*var, PROVIDER_VAR);
            assert!(reason.contains("prod"), "{reason}");
        }
    }

    #[test]
    fn an_unknown_provider_is_refused_in_every_stage() {
        for stage in ["dev", PROD_STAGE] {
            assert!(matches!(
                provider(stage, Some("acme"), false),
                Err(ConfigError::Invalid {
                    name: PROVIDER_VAR,
                    ..
                })
            ));
        }
    }
}
