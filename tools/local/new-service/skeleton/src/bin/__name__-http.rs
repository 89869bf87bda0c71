//! __name__-http: the __name__ HTTP API.

use __name__::{adapters::dynamodb::DynamoRecords, config, handlers::http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    kit::telemetry::init(__name__::SERVICE);
    let config = config::from_env()?;
    let scopes = kit::http::Scopes::from_env()?;
    let aws = kit::config::aws().await;
    let store = DynamoRecords::new(
        kit::prime::dynamodb(&aws, &config.table).await,
        config.table,
    );
    kit::http::run(|request| http::handle(&store, &scopes, request)).await
}
