//! payments-events: charges placed orders and refunds cancelled ones, from the payments queue.
// The batch future nests deeply (runtime → batch → message → provider → repository).
#![recursion_limit = "256"]

use payments::{
    adapters::{dynamodb::DynamoPayments, simulator::Simulator},
    config::{EventsConfig, Provider},
    handlers::events,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(payments::SERVICE);
    let config = EventsConfig::from_env()?;
    let aws = kit::config::aws().await;
    let payments = DynamoPayments::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    let Provider::Simulator { recovered } = config.provider;
    let provider = Simulator::new(payments.clone(), recovered);
    kit::sqs::run(payments::SERVICE, |message| {
        events::handle(&payments, &provider, message)
    })
    .await
}
