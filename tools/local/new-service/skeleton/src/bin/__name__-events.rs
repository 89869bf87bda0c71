//! __name__-events: records confirmed orders from the __name__ queue.
// The batch future nests deeply (runtime → batch → message → store).
#![recursion_limit = "256"]

use __name__::{adapters::dynamodb::DynamoRecords, config, handlers::events};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(__name__::SERVICE);
    let config = config::from_env()?;
    let aws = kit::config::aws().await;
    let store = DynamoRecords::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::sqs::run(__name__::SERVICE, |message| events::handle(&store, message)).await
}
