//! notify-events: notifies customers of their orders' outcomes from the notify queue.
// The batch future nests deeply (runtime → batch → message → notifier).
#![recursion_limit = "256"]

use notify::{adapters::dynamodb::DynamoNotifications, config, handlers::events};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    kit::telemetry::init(notify::SERVICE);
    let config = config::from_env()?;
    let aws = kit::config::aws().await;
    let notifier = DynamoNotifications::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::sqs::run(notify::SERVICE, |message| {
        events::handle(&notifier, message)
    })
    .await
}
