//! orders-http: the orders HTTP API.

use orders::{adapters::dynamodb::DynamoOrders, config::TABLE_VAR, handlers::http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    kit::telemetry::init(orders::SERVICE);
    let config = kit::config::TableConfig::from_env(TABLE_VAR)?;
    let scopes = kit::http::Scopes::from_env()?;
    let aws = kit::config::aws().await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config.table);
    kit::http::run(|request| http::handle(&orders, &scopes, request)).await
}
