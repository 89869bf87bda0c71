//! The ports over the AWS SDK: CodeDeploy reads deployments and takes the verdict, Lambda
//! invokes the new version.

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use aws_sdk_lambda::{primitives::Blob, types::InvocationType};

use crate::ports::{CallError, Deployments, Invocation, Invoker, Reporter, Status};

/// CodeDeploy through `aws-sdk-codedeploy`; cheap to clone.
#[derive(Debug, Clone)]
pub struct CodeDeploy {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeploy {
    pub fn new(client: aws_sdk_codedeploy::Client) -> Self {
        CodeDeploy { client }
    }
}

impl Deployments for CodeDeploy {
    async fn app_spec(&self, deployment_id: &str) -> Result<String, CallError> {
        let output = self
            .client
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| CallError::new("codedeploy:GetDeployment", e))?;
        let revision = output.deployment_info().and_then(|info| info.revision());
        // Lambda deployments carry the AppSpec inline: `appSpecContent`, or the older `string`.
        let content = revision
            .and_then(|r| r.app_spec_content())
            .and_then(|c| c.content())
            .or_else(|| revision.and_then(|r| r.string()).and_then(|s| s.content()))
            .unwrap_or_default();
        Ok(content.to_owned())
    }
}

impl Reporter for CodeDeploy {
    async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: Status,
    ) -> Result<(), CallError> {
        let status = match status {
            Status::Succeeded => LifecycleEventStatus::Succeeded,
            Status::Failed => LifecycleEventStatus::Failed,
        };
        self.client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(execution_id)
            .status(status)
            .send()
            .await
            .map_err(|e| CallError::new("codedeploy:PutLifecycleEventHookExecutionStatus", e))?;
        Ok(())
    }
}

/// Lambda through `aws-sdk-lambda`; cheap to clone.
#[derive(Debug, Clone)]
pub struct Lambda {
    client: aws_sdk_lambda::Client,
}

impl Lambda {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Lambda { client }
    }
}

impl Invoker for Lambda {
    async fn invoke(
        &self,
        function: &str,
        version: &str,
        payload: &[u8],
    ) -> Result<Invocation, CallError> {
        let output = self
            .client
            .invoke()
            .function_name(function)
            .qualifier(version)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| CallError::new("lambda:InvokeFunction", e))?;
        Ok(Invocation {
            function_error: output.function_error().map(str::to_owned),
            payload: output
                .payload()
                .map(|p| p.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}
