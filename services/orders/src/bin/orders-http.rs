//! orders-http: the orders HTTP API.

use orders::{adapters::dynamodb::DynamoOrders, config, handlers::http};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    kit::telemetry::init(orders::SERVICE);
    let table = kit::config::TableConfig::from_env(config::TABLE_VAR)?;
    let scopes = kit::http::Scopes::from_env()?;
    let limits = config::limits_from_env()?;
    let aws = kit::config::aws().await;
    let orders = DynamoOrders::new(kit::prime::dynamodb(&aws, &table.table).await, table.table)
        .with_limits(limits);
    kit::http::run(|request| http::handle(&orders, &scopes, request)).await
}
