//! The CodeDeploy PreTraffic hook of every function (see docs/deploy.md).

use deploy_smoke::{
    Config,
    adapters::{CodeDeploy, Lambda},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init("deploy");
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let aws = kit::config::aws().await;
    let codedeploy = CodeDeploy::new(aws_sdk_codedeploy::Client::new(&aws));
    let lambda = Lambda::new(aws_sdk_lambda::Client::new(&aws));
    deploy_smoke::run(config, codedeploy.clone(), lambda, codedeploy).await
}
