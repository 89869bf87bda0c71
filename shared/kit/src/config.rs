//! Reading a function's settings from environment variables, once, at start.
//!
//! Every service declares, per function binary, which variables its config reads
//! ([`FunctionEnv`]); a test checks that list against `infra/template.yaml`.

use std::{env, str::FromStr};

/// The environment variables one function binary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionEnv {
    /// The binary (and Lambda function) name, e.g. `orders-http`.
    pub binary: &'static str,
    /// The variables its config reads.
    pub vars: &'static [&'static str],
}

/// A missing or unusable setting; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (see infra/template.yaml for its value)")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name)?.ok_or(ConfigError::Missing(name))
}

/// An optional variable; empty counts as unset.
pub fn optional(name: &'static str) -> Result<Option<String>, ConfigError> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid {
            name,
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// An optional variable parsed with [`FromStr`], or `default` when unset.
pub fn parsed_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name)? {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

/// Settings of a function that needs only its service's table (the HTTP and events functions
/// of every service), read from the variable `var`, e.g. `ORDERS_TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub table: String,
}

impl TableConfig {
    pub fn from_env(var: &'static str) -> Result<Self, ConfigError> {
        Ok(TableConfig {
            table: required(var)?,
        })
    }
}

/// The AWS SDK configuration for this process: region and credentials from the Lambda
/// environment, and the standard `AWS_ENDPOINT_URL` override (used locally for moto).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err = required("KIT_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(err, ConfigError::Missing("KIT_TEST_SURELY_UNSET"));
        assert!(err.to_string().contains("KIT_TEST_SURELY_UNSET"));
    }

    #[test]
    fn a_table_config_names_its_missing_variable() {
        assert_eq!(
            TableConfig::from_env("KIT_TEST_SURELY_UNSET_TABLE"),
            Err(ConfigError::Missing("KIT_TEST_SURELY_UNSET_TABLE"))
        );
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        assert_eq!(parsed_or("KIT_TEST_SURELY_UNSET_2", 7_u32), Ok(7));
    }
}
