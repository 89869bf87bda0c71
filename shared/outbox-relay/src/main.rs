//! outbox-relay: publishes one service's outbox (its table's stream) to EventBridge. Every
//! service with an outbox deploys this binary as its `<service>-relay` function, with
//! `SERVICE_NAME` and `EVENT_BUS_NAME` set (`kit::relay::ENV_VARS`).

use kit::relay::{Config, EventBridgePublisher};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    // Telemetry and the relay keep the service name for the life of the process.
    let service: &'static str = config.service.leak();
    kit::telemetry::init(service);
    let aws = kit::config::aws().await;
    let publisher =
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&aws), config.event_bus);
    kit::relay::run(service, publisher).await
}
