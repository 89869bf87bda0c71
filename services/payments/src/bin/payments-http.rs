//! payments-http: the payments HTTP API.

use payments::{adapters::dynamodb::DynamoPayments, config::Config, handlers::http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    kit::telemetry::init(payments::SERVICE);
    let config = Config::from_env()?;
    let scopes = kit::http::Scopes::from_env()?;
    let aws = kit::config::aws().await;
    let payments = DynamoPayments::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::http::run(|request| http::handle(&payments, &scopes, request)).await
}
