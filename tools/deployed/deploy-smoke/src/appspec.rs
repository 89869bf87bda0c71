//! The part of a Lambda deployment's AppSpec the hook needs: which function moves to which
//! version. CodeDeploy keeps it as YAML or JSON text (JSON parses as YAML).

use std::collections::BTreeMap;

use serde::Deserialize;

/// A function the deployment moves to a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The function name (or ARN) as the AppSpec gives it.
    pub name: String,
    /// The alias whose traffic moves, e.g. `live`.
    pub alias: String,
    /// The new version, the one to smoke-test.
    pub version: String,
}

/// An AppSpec the hook cannot use.
#[derive(Debug, thiserror::Error)]
pub enum AppSpecError {
    #[error("the deployment has no AppSpec content")]
    Missing,
    #[error("the AppSpec is not valid YAML/JSON of the expected shape")]
    Malformed(#[source] serde_norway::Error),
    #[error("the AppSpec names no AWS::Lambda::Function resource")]
    NoFunction,
}

const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";

#[derive(Deserialize)]
struct AppSpec {
    #[serde(rename = "Resources")]
    resources: Vec<BTreeMap<String, Resource>>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Properties")]
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Alias")]
    alias: String,
    #[serde(rename = "TargetVersion")]
    target_version: Scalar,
}

/// YAML AppSpecs may write a version as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(u64),
}

impl From<Scalar> for String {
    fn from(scalar: Scalar) -> Self {
        match scalar {
            Scalar::Text(text) => text,
            Scalar::Number(number) => number.to_string(),
        }
    }
}

/// The functions an AppSpec moves, in order; at least one.
pub fn targets(content: &str) -> Result<Vec<Target>, AppSpecError> {
    if content.trim().is_empty() {
        return Err(AppSpecError::Missing);
    }
    let spec: AppSpec = serde_norway::from_str(content).map_err(AppSpecError::Malformed)?;
    let targets: Vec<Target> = spec
        .resources
        .into_iter()
        .flat_map(BTreeMap::into_values)
        .filter(|resource| resource.kind == LAMBDA_FUNCTION)
        .map(|resource| Target {
            name: resource.properties.name,
            alias: resource.properties.alias,
            version: resource.properties.target_version.into(),
        })
        .collect();
    if targets.is_empty() {
        return Err(AppSpecError::NoFunction);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_appspec_as_sam_writes_it_gives_the_target_version() {
        let content = r#"{"version":0.0,"Resources":[{"OrdersHttpFunction":{"Type":"AWS::Lambda::Function","Properties":{"Name":"shop-dev-orders-http","Alias":"live","CurrentVersion":"3","TargetVersion":"4"}}}],"Hooks":[{"BeforeAllowTraffic":"CodeDeployHook_shop-dev-deploy-smoke"}]}"#;
        let targets = targets(content).unwrap();
        assert_eq!(
            targets,
            vec![Target {
                name: "shop-dev-orders-http".into(),
                alias: "live".into(),
                version: "4".into(),
            }]
        );
    }

    #[test]
    fn a_yaml_appspec_with_numeric_versions_is_read_too() {
        let content = "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: shop-dev-notify-relay\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n";
        let targets = targets(content).unwrap();
        assert_eq!(targets[0].name, "shop-dev-notify-relay");
        assert_eq!(targets[0].version, "2");
    }

    #[test]
    fn an_appspec_without_a_function_is_refused() {
        let content = r#"{"version":0.0,"Resources":[]}"#;
        assert!(matches!(targets(content), Err(AppSpecError::NoFunction)));
        assert!(matches!(targets("  "), Err(AppSpecError::Missing)));
        assert!(matches!(targets("[1, 2"), Err(AppSpecError::Malformed(_))));
    }
}
