//! What the hook needs from AWS, one narrow trait per need.

use std::error::Error as StdError;

use serde::Serialize;

/// The verdict reported to CodeDeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Succeeded,
    Failed,
}

/// A call to AWS that failed; the SDK error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct CallError {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl CallError {
    pub fn new(
        operation: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        CallError {
            operation,
            source: source.into(),
        }
    }
}

/// What a function invocation returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    /// `Unhandled` (or `Handled`) when the function failed; `None` when it returned.
    pub function_error: Option<String>,
    /// The response payload (JSON), empty when there was none.
    pub payload: Vec<u8>,
}

/// Reads deployments (`codedeploy:GetDeployment`).
pub trait Deployments: Send + Sync {
    /// The AppSpec content (YAML or JSON) of the deployment's revision.
    fn app_spec(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<String, CallError>> + Send;
}

/// Invokes a function version synchronously (`lambda:InvokeFunction`, `RequestResponse`).
pub trait Invoker: Send + Sync {
    fn invoke(
        &self,
        function: &str,
        version: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<Invocation, CallError>> + Send;
}

/// Reports a hook's verdict (`codedeploy:PutLifecycleEventHookExecutionStatus`).
pub trait Reporter: Send + Sync {
    fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: Status,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
}
