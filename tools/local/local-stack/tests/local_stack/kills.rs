//! Function processes SIGKILLed at the worst moments — idle, mid-invocation, while starting
//! (before their first `/next`) — never stop an event source mapping or hang a request: the
//! runner replaces every dead sandbox and bounds every invocation by the function's timeout.
//! Each test runs under its own deadline, so a hang fails the test instead of blocking CI.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use local_stack::Stack;
use local_stack::chaos::Rng;
use serde_json::{Value, json};

use crate::helpers::{eventually, peek, signal, spawn_stack};
use crate::sqs_mapping::harmless_body;

/// Fails the test when `body` does not finish within `limit` (a hang is a failure).
async fn within(limit: Duration, body: Pin<Box<dyn Future<Output = ()> + Send + '_>>) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("the test hung: not finished after {limit:?}");
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

/// Places an order; `None` when the API answered an error (allowed while processes die).
async fn place_order(stack: &Stack, token: &str, sku: &str) -> Option<String> {
    let r = http()
        .post(format!("{}/v1/orders", stack.api_url))
        .bearer_auth(token)
        .json(&json!({"lines": [{"sku": sku, "quantity": 1,
            "unit_price": {"amount": 900, "currency": "EUR"}}], "card_token": "tok_approve"}))
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    let order: Value = r.json().await.ok()?;
    order["id"].as_str().map(str::to_owned)
}

/// Waits until OrderPlaced of `id` is in the payments queue: the stream mapping delivered the
/// outbox record to orders-relay, which published it.
async fn reaches_payments_queue(stack: &Stack, id: &str, limit: Duration) {
    let queue = stack
        .resources
        .queue_url("PaymentsQueue")
        .unwrap()
        .to_owned();
    eventually(
        "OrderPlaced in the payments queue after the kills",
        limit,
        || async {
            peek(stack, &queue)
                .await
                .into_iter()
                .any(|m| m.body().is_some_and(|b| b.contains(id)))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_mapping_keeps_delivering_after_random_kills_of_every_function_process() {
    within(
        Duration::from_secs(150),
        Box::pin(async {
            let stack =
                spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
            let token = stack.token("kim", &["shop/orders"]).unwrap();
            let functions: Vec<_> = stack.functions.values().cloned().collect();
            let stop = Arc::new(AtomicBool::new(false));
            let killed = Arc::new(AtomicUsize::new(0));
            // Every 200 ms, SIGKILL one process of a random function, whatever it is doing.
            let killer = tokio::spawn({
                let (stop, killed) = (stop.clone(), killed.clone());
                async move {
                    let mut rng = Rng::new(7);
                    while !stop.load(Ordering::Relaxed) {
                        let f = &functions[rng.below(functions.len())];
                        let pids = f.pids();
                        if !pids.is_empty() {
                            let pid = pids[rng.below(pids.len())];
                            if std::process::Command::new("kill")
                                .args(["-KILL", &pid.to_string()])
                                .status()
                                .is_ok_and(|s| s.success())
                            {
                                killed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            });
            let storm = Instant::now();
            let mut n = 0;
            while storm.elapsed() < Duration::from_secs(8) {
                let _ = place_order(&stack, &token, &format!("SKU-K{n}")).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stop.store(true, Ordering::Relaxed);
            killer.await.unwrap();
            assert!(
                killed.load(Ordering::Relaxed) >= 10,
                "the storm killed processes"
            );

            // After the storm a new order placed over HTTP flows through the stream mapping. It
            // is another customer's: the storm's customer has used up its write limit and its
            // open-order cap (nothing consumes its orders here), which would refuse it.
            let after = stack.token("kim-after", &["shop/orders"]).unwrap();
            let id = eventually(
                "an order accepted after the kills",
                Duration::from_secs(20),
                || place_order(&stack, &after, "SKU-AFTER"),
            )
            .await;
            reaches_payments_queue(&stack, &id, Duration::from_secs(30)).await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_idle_is_replaced_without_waiting_for_an_event() {
    within(
        Duration::from_secs(60),
        Box::pin(async {
            let stack = spawn_stack(|o| o.only = vec!["orders-events".into()]).await;
            let f = stack.function("orders-events").unwrap().clone();
            let old = f.pids();
            assert_eq!(old.len(), 1, "one warm process");
            signal("-KILL", old[0]);
            let fresh = eventually("a replacement process", Duration::from_secs(10), || async {
                let pids = f.pids();
                (!pids.is_empty() && !pids.contains(&old[0])).then_some(pids)
            })
            .await;
            assert_eq!(fresh.len(), 1, "one replacement: {fresh:?}");

            let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
            let sent = stack
                .clients
                .sqs
                .send_message()
                .queue_url(&queue)
                .message_body(harmless_body(10))
                .send()
                .await
                .unwrap();
            let id = sent.message_id().unwrap().to_owned();
            eventually("the message delivered", Duration::from_secs(20), || async {
                stack
                    .reporter
                    .deliveries()
                    .iter()
                    .any(|d| d.success && d.ids.contains(&id))
                    .then_some(())
            })
            .await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_killed_while_starting_are_replaced_with_backoff_and_the_stream_mapping_delivers()
{
    within(
        Duration::from_secs(120),
        Box::pin(async {
            let stack =
                spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
            let relay = stack.function("orders-relay").unwrap().clone();
            let token = stack.token("lee", &["shop/orders"]).unwrap();
            // An outbox record waits for the relay while every relay process is killed as soon as it
            // appears (most before their first /next) for 4 s.
            let first = place_order(&stack, &token, "SKU-S1")
                .await
                .expect("an order before the kills");
            let started = Instant::now();
            let mut seen = Vec::new();
            while started.elapsed() < Duration::from_secs(4) {
                for pid in relay.pids() {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    if !seen.contains(&pid) {
                        seen.push(pid);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            assert!(
                seen.len() >= 2,
                "the runner kept starting relay processes: {seen:?}"
            );
            assert!(
                seen.len() < 200,
                "replacements back off instead of spinning: {} processes in 4 s",
                seen.len()
            );
            reaches_payments_queue(&stack, &first, Duration::from_secs(40)).await;
            let second = place_order(&stack, &token, "SKU-S2")
                .await
                .expect("an order after the kills");
            reaches_payments_queue(&stack, &second, Duration::from_secs(30)).await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_process_dies_mid_invocation_answers_502_and_the_next_one_succeeds() {
    within(
        Duration::from_secs(60),
        Box::pin(async {
            let stack = spawn_stack(|o| o.only = vec!["orders-http".into()]).await;
            let f = stack.function("orders-http").unwrap().clone();
            let token = stack.token("max", &["shop/orders"]).unwrap();
            let pid = f.pids()[0];
            signal("-STOP", pid);
            let request = tokio::spawn({
                let url = format!("{}/v1/orders", stack.api_url);
                let token = token.clone();
                async move { http().get(url).bearer_auth(token).send().await }
            });
            eventually("the request in flight", Duration::from_secs(10), || {
                let f = f.clone();
                async move { (f.in_flight() > 0).then_some(()) }
            })
            .await;
            signal("-KILL", pid);
            let r = request.await.unwrap().expect("an answer, not a hang");
            assert_eq!(r.status(), 502);
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                json!({"message": "Internal Server Error"})
            );
            let r = http()
                .get(format!("{}/v1/orders", stack.api_url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "a new process answers the next request");
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_function_timeout_answers_504_and_the_stuck_process_is_replaced() {
    within(
        Duration::from_secs(60),
        Box::pin(async {
            let stack = spawn_stack(|o| {
                o.only = vec!["orders-http".into()];
                o.parameters.insert("HttpTimeout".into(), "1".into());
            })
            .await;
            let f = stack.function("orders-http").unwrap().clone();
            let token = stack.token("ned", &["shop/orders"]).unwrap();
            let pid = f.pids()[0];
            signal("-STOP", pid);
            let started = Instant::now();
            let r = http()
                .get(format!("{}/v1/orders", stack.api_url))
                .bearer_auth(&token)
                .send()
                .await
                .expect("an answer, not a hang");
            assert_eq!(r.status(), 504);
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                json!({"message": "Endpoint request timed out"})
            );
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "answered after the 1 s timeout, not the HTTP API's 30 s: {:?}",
                started.elapsed()
            );
            eventually(
                "the stuck process replaced",
                Duration::from_secs(10),
                || async {
                    let pids = f.pids();
                    (!pids.is_empty() && !pids.contains(&pid)).then_some(())
                },
            )
            .await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_on_a_table_does_not_stop_its_stream_mapping() {
    // A redelivery after a kill makes a consumer's transaction fail its idempotency condition;
    // moto then restores the table from a copy, which must not orphan the stream's readers.
    within(
        Duration::from_secs(90),
        Box::pin(async {
            let stack =
                spawn_stack(|o| o.only = vec!["orders-http".into(), "orders-relay".into()]).await;
            let token = stack.token("ola", &["shop/orders"]).unwrap();
            let first = place_order(&stack, &token, "SKU-T1")
                .await
                .expect("an order");
            reaches_payments_queue(&stack, &first, Duration::from_secs(30)).await;

            use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
            let table = stack.resources.tables["OrdersTable"].name.clone();
            let s = |v: &str| AttributeValue::S(v.to_owned());
            let cancelled = stack
                .clients
                .dynamodb
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&table)
                                .item("pk", s("TEST#written-then-rolled-back"))
                                .item("sk", s("TEST"))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(
                            ConditionCheck::builder()
                                .table_name(&table)
                                .key("pk", s("TEST#missing"))
                                .key("sk", s("TEST"))
                                .condition_expression("attribute_exists(pk)")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .send()
                .await;
            assert!(cancelled.is_err(), "the transaction is cancelled");

            let second = place_order(&stack, &token, "SKU-T2")
                .await
                .expect("an order after the cancelled transaction");
            reaches_payments_queue(&stack, &second, Duration::from_secs(30)).await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_every_kills_processes_and_the_mapping_still_delivers() {
    within(
        Duration::from_secs(60),
        Box::pin(async {
            let stack = spawn_stack(|o| {
                o.only = vec!["orders-events".into()];
                o.kill_every = Some(Duration::from_millis(1000));
                o.seed = 7;
            })
            .await;
            eventually("three kills", Duration::from_secs(15), || async {
                (stack.killed.load(Ordering::Relaxed) >= 3).then_some(())
            })
            .await;
            let queue = stack.resources.queue_url("OrdersQueue").unwrap().to_owned();
            let sent = stack
                .clients
                .sqs
                .send_message()
                .queue_url(&queue)
                .message_body(harmless_body(20))
                .send()
                .await
                .unwrap();
            let id = sent.message_id().unwrap().to_owned();
            // The queue's visibility timeout is 5 s: a delivery cut by a kill comes back.
            eventually("the message delivered", Duration::from_secs(40), || async {
                stack
                    .reporter
                    .deliveries()
                    .iter()
                    .any(|d| d.success && d.ids.contains(&id))
                    .then_some(())
            })
            .await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_make_a_share_of_the_functions_aws_calls_fail_and_forward_the_rest() {
    within(
        Duration::from_secs(120),
        Box::pin(async {
            let state = std::env::temp_dir().join(format!("ls-faults-{}", uuid::Uuid::new_v4()));
            let stack = spawn_stack(|o| {
                o.only = vec!["orders-http".into()];
                o.faults = Some(0.5);
                o.seed = 3;
                o.state_dir = Some(state.clone());
            })
            .await;
            let token = stack.token("pat", &["shop/orders"]).unwrap();
            let mut statuses = Vec::new();
            for _ in 0..12 {
                let r = http()
                    .get(format!("{}/v1/orders", stack.api_url))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("an answer");
                statuses.push(r.status().as_u16());
            }
            assert!(
                statuses.contains(&200),
                "calls that draw no fault are forwarded to moto: {statuses:?}"
            );
            let prefix = stack.resources.tables["OrdersTable"]
                .name
                .split('-')
                .next()
                .unwrap()
                .to_owned();
            let log =
                std::fs::read_to_string(state.join("logs").join(prefix).join("fault-proxy.log"))
                    .unwrap();
            assert!(
                log.lines().any(|l| l.starts_with("fault_proxy: ")),
                "faults were injected: {log}"
            );
        }),
    )
    .await;
}
