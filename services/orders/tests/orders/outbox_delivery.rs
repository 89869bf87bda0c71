//! The whole delivery path on moto with the real SDK clients: HTTP handler → TransactWriteItems
//! → table stream → relay → EventBridge rule → SQS, and back in through the events handler.

use std::time::Duration;

use kit::{
    events::{Envelope, Event},
    outbox::Record,
    relay::{EventBridgePublisher, PublishError, Publisher, relay},
    sqs::{parse, process_batch},
};
use orders::{adapters::dynamodb::DynamoOrders, domain::OrderId, ports::OrderRepository};
use serde_json::json;

use crate::{
    dynamodb::table,
    events::authorized,
    helpers::{assert_matches_schema, order_body, post, send},
};

/// A publisher whose EventBridge is down: every call fails, as after a crash or an outage.
struct Down;

impl Publisher for Down {
    async fn publish(&self, _: &[Record]) -> Result<Vec<Option<String>>, PublishError> {
        Err(PublishError("connection refused".into()))
    }
}

#[tokio::test]
async fn a_placed_order_reaches_the_payments_queue_as_an_order_placed_envelope() {
    let config = testkit::sdk_config().await;
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let bus = testkit::create_bus(&config).await;
    let (queue, _) = testkit::queue_for_rule(
        &config,
        &bus,
        json!({"source": ["shop.orders"], "detail-type": ["OrderPlaced"]}),
    )
    .await;

    let reply = send(
        &orders,
        post("/v1/orders", order_body("tok_approve")).header("x-correlation-id", "corr-e2e"),
    )
    .await;
    assert_eq!(reply.status, 201);
    let order_id = reply.body["id"].as_str().unwrap();

    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus);
    let response = relay(
        "orders",
        testkit::stream_event(&config, &table).await,
        &publisher,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());

    let sqs = aws_sdk_sqs::Client::new(&config);
    let messages = testkit::receive(&sqs, &queue, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1, "exactly one OrderPlaced delivered");
    let event = testkit::sqs_event(&messages, "arn:aws:sqs:us-east-1:123456789012:payments");
    let message = parse(&event.records[0]).unwrap();
    assert_eq!(message.envelope.event_type, "OrderPlaced");
    assert_eq!(message.envelope.correlation_id, "corr-e2e");
    assert_matches_schema(&message.envelope);
    let Event::OrderPlaced(placed) = message.event else {
        panic!("not OrderPlaced")
    };
    assert_eq!(placed.order_id, order_id);
    assert_eq!(placed.total.amount, 2999);
}

#[tokio::test]
async fn an_event_written_before_a_crash_is_delivered_once_the_relay_runs_again() {
    let config = testkit::sdk_config().await;
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let bus = testkit::create_bus(&config).await;
    let (queue, _) =
        testkit::queue_for_rule(&config, &bus, json!({"source": ["shop.orders"]})).await;
    let sqs = aws_sdk_sqs::Client::new(&config);

    let reply = send(&orders, post("/v1/orders", order_body("tok_approve"))).await;
    assert_eq!(reply.status, 201);
    let order_id = OrderId::parse(reply.body["id"].as_str().unwrap()).unwrap();
    assert!(
        orders.get(&order_id).await.unwrap().is_some(),
        "the write committed"
    );

    // The relay's first run dies before anything is published: it reports the record as a
    // batch item failure, so Lambda would retry it from the stream.
    let stream = testkit::stream_event(&config, &table).await;
    let failed = relay("orders", stream, &Down).await;
    assert_eq!(failed.batch_item_failures.len(), 1);
    assert!(
        testkit::receive(&sqs, &queue, Duration::from_secs(1))
            .await
            .is_empty(),
        "nothing published yet"
    );

    // The stream still holds the record; the next run publishes it.
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus);
    let retried = relay(
        "orders",
        testkit::stream_event(&config, &table).await,
        &publisher,
    )
    .await;
    assert!(retried.batch_item_failures.is_empty());
    let messages = testkit::receive(&sqs, &queue, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let message =
        parse(&testkit::sqs_event(&messages, "arn:aws:sqs:us-east-1:123456789012:q").records[0])
            .unwrap();
    assert_eq!(message.envelope.data["order_id"], order_id.as_str());
}

#[tokio::test]
async fn a_payment_event_through_a_real_queue_confirms_the_order() {
    let config = testkit::sdk_config().await;
    let (client, table) = table().await;
    let orders = DynamoOrders::new(client, &table);
    let bus = testkit::create_bus(&config).await;
    let (queue, arn) =
        testkit::queue_for_rule(&config, &bus, json!({"source": ["shop.payments"]})).await;
    let sqs = aws_sdk_sqs::Client::new(&config);

    let reply = send(&orders, post("/v1/orders", order_body("tok_approve"))).await;
    let order_id = reply.body["id"].as_str().unwrap().to_owned();

    // payments publishes PaymentAuthorized to the bus; the rule delivers it to our queue.
    let envelope = Envelope::new(
        "shop.payments",
        &authorized(&order_id),
        "corr-pay",
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    // It was written while handling the request traced as `trace`.
    let trace = "Root=1-6a2b3c4d-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1";
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus);
    let record = Record {
        envelope,
        trace_header: Some(trace.into()),
    };
    assert_eq!(
        publisher
            .publish(std::slice::from_ref(&record))
            .await
            .unwrap(),
        [None]
    );
    let messages = testkit::receive(&sqs, &queue, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);

    // Delivered twice (SQS is at-least-once): one transition, no failure reported.
    let mut event = testkit::sqs_event(&messages, &arn);
    event.records.push(event.records[0].clone());
    let response = process_batch("orders", event, |m| {
        orders::handlers::events::handle(&orders, m)
    })
    .await;
    assert!(response.batch_item_failures.is_empty());
    let order = orders
        .get(&OrderId::parse(&order_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status, orders::domain::Status::Confirmed);
    assert_eq!(order.version, 2);

    // OrderConfirmed went to the outbox in the same transaction, with the saga's correlation
    // id and trace: PutEvents' TraceHeader reached SQS as AWSTraceHeader, and the consumer
    // kept it with the event it wrote.
    let stream = testkit::stream_event(&config, &table).await;
    let confirmed: Vec<Record> = stream
        .records
        .into_iter()
        .filter_map(|r| kit::outbox::decode(r.change.new_image).and_then(Result::ok))
        .filter(|r| r.envelope.event_type == "OrderConfirmed")
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].envelope.correlation_id, "corr-pay");
    assert_eq!(
        confirmed[0].trace_header.as_deref(),
        Some(trace),
        "the trace of the request behind PaymentAuthorized"
    );
}
