//! The hook's settings, read once at start.

use kit::config::{ConfigError, FunctionEnv, required};

use crate::smoke::SmokeEvents;

/// The smoke events, a JSON object keyed by function-name suffix (see [`SmokeEvents`]).
pub const SMOKE_EVENTS_VAR: &str = "SMOKE_EVENTS";

/// The variables the `deploy-smoke` binary reads.
pub const FUNCTION: FunctionEnv = FunctionEnv {
    binary: "deploy-smoke",
    vars: &[SMOKE_EVENTS_VAR],
};

/// Settings of the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub smoke_events: SmokeEvents,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            smoke_events: parse_smoke_events(&required(SMOKE_EVENTS_VAR)?)?,
        })
    }
}

/// Parses the value of `SMOKE_EVENTS`; the error names the variable.
pub fn parse_smoke_events(raw: &str) -> Result<SmokeEvents, ConfigError> {
    SmokeEvents::parse(raw).map_err(|reason| ConfigError::Invalid {
        name: SMOKE_EVENTS_VAR,
        reason,
    })
}
