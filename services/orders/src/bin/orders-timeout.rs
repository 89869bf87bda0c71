//! orders-timeout: on a schedule, cancels orders PENDING past the saga timeout.

use orders::{adapters::dynamodb::DynamoOrders, config::TimeoutConfig, handlers::timeout};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(orders::SERVICE);
    let config = TimeoutConfig::from_env()?;
    let aws = kit::config::aws().await;
    let orders = DynamoOrders::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::schedule::run(orders::SERVICE, |now| {
        timeout::expire(&orders, config.timeout, now)
    })
    .await
}
