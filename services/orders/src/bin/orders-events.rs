//! orders-events: applies payment outcomes from the orders queue.
// The batch future nests deeply (runtime → batch → message → repository).
#![recursion_limit = "256"]

use orders::{adapters::dynamodb::DynamoOrders, config::TABLE_VAR, handlers::events};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(orders::SERVICE);
    let config = kit::config::TableConfig::from_env(TABLE_VAR)?;
    let aws = kit::config::aws().await;
    let orders = DynamoOrders::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::sqs::run(orders::SERVICE, |message| events::handle(&orders, message)).await
}
