//! notify-http: the notifications HTTP API.

use notify::{adapters::dynamodb::DynamoNotifications, config, handlers::http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    kit::telemetry::init(notify::SERVICE);
    let config = config::from_env()?;
    let scopes = kit::http::Scopes::from_env()?;
    let aws = kit::config::aws().await;
    let log = DynamoNotifications::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::http::run(|request| http::handle(&log, &scopes, request)).await
}
