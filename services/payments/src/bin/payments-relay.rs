//! payments-relay: publishes the payments outbox (table stream) to EventBridge.

use kit::relay::{Config, EventBridgePublisher};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(payments::SERVICE);
    let config = Config::from_env()?;
    let aws = kit::config::aws().await;
    let publisher =
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&aws), config.event_bus);
    kit::relay::run(payments::SERVICE, publisher).await
}
