//! A stack that starts its own moto starts one per DynamoDB table (with its stream) and one for
//! every other service, so that the functions' AWS calls spread over several Python interpreters
//! instead of queueing behind one (issue 13, the local stack under load).

use std::time::Duration;

use local_stack::{Options, Stack};

use crate::helpers::{eventually, place_order};

/// The stack's clients, all pointed at `endpoint`.
async fn clients_at(endpoint: &str) -> local_stack::resources::Clients {
    let endpoints = local_stack::moto::Endpoints::one(endpoint);
    local_stack::resources::Clients::new(&endpoints, "us-east-1").await
}

async fn table_names(endpoint: &str) -> Vec<String> {
    let tables = clients_at(endpoint)
        .await
        .dynamodb
        .list_tables()
        .send()
        .await;
    tables.unwrap().table_names.unwrap_or_default()
}

async fn queue_urls(endpoint: &str) -> Vec<String> {
    let queues = clients_at(endpoint).await.sqs.list_queues().send().await;
    queues.unwrap().queue_urls.unwrap_or_default()
}

async fn order_status(stack: &Stack, token: &str, id: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/orders/{id}", stack.api_url))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    let order: serde_json::Value = r.json().await.ok()?;
    Some(order["status"].as_str()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_of_its_own_puts_each_table_on_a_moto_of_its_own_and_the_saga_runs_across_them() {
    tokio::task::block_in_place(testkit::build_functions);
    // Its own state dir: the env files and logs of a `make run` stay untouched.
    let state = std::env::temp_dir().join(format!("own-moto-{}", uuid::Uuid::new_v4().simple()));
    let mut o = Options::new(testkit::repo_root());
    o.build = false;
    o.state_dir = Some(state.clone());
    let stack = Stack::start(o).await.expect("the local stack starts");
    let endpoints = stack.endpoints.clone();

    // Every table is alone on its moto; the queues are all on the other one.
    let tables: Vec<&String> = stack.resources.tables.values().map(|t| &t.name).collect();
    assert!(tables.len() >= 3, "{tables:?}");
    for name in &tables {
        let endpoint = endpoints.table(name);
        assert_ne!(endpoint, endpoints.aws, "{name} has a moto of its own");
        assert_eq!(table_names(endpoint).await, [name.to_string()]);
        assert!(
            queue_urls(endpoint).await.is_empty(),
            "queues beside {name}"
        );
    }
    assert!(
        table_names(&endpoints.aws).await.is_empty(),
        "tables on the other moto"
    );
    let queues = queue_urls(&endpoints.aws).await;
    assert_eq!(queues.len(), stack.resources.queues.len(), "{queues:?}");

    // A function is told its own table's moto: the env file a developer runs it with says so.
    let orders = stack.resources.table("OrdersTable").unwrap();
    let env = std::fs::read_to_string(state.join("env/default/orders-http.env")).unwrap();
    assert!(
        env.contains(&format!("AWS_ENDPOINT_URL={}\n", endpoints.aws))
            && env.contains(&format!(
                "AWS_ENDPOINT_URL_DYNAMODB={}\n",
                endpoints.table(orders)
            )),
        "{env}"
    );

    // And the saga crosses them: three tables and their streams, the bus and the queues.
    let id = place_order(&stack, "ada", "tok_approve").await;
    let token = stack.token("ada", &["shop/orders"]).unwrap();
    eventually("the order to be confirmed", Duration::from_secs(60), || {
        let (stack, token, id) = (&stack, &token, &id);
        async move {
            (order_status(stack, token, id).await.as_deref() == Some("CONFIRMED")).then_some(())
        }
    })
    .await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&state);
}
