//! Test-only helpers (a dev-dependency, never a normal one): one moto server per test binary,
//! SDK clients pointed at it, isolated resource names, the standard service table, and
//! reading a table's stream as the Lambda DynamoDB event a relay receives.
//!
//! Test code: a broken precondition panics with a message saying what to do.
#![allow(clippy::expect_used, clippy::panic)]

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};

pub mod schema;
pub mod template;

/// The repository root: the workspace of the package under test, found at run time
/// (local_stack::stack::running_workspace).
pub fn repo_root() -> PathBuf {
    local_stack::stack::running_workspace(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Builds every binary of the workspace (the services', the shared relay, the deploy hook, the
/// baselines) once per test binary, for the tests that run function processes. It is the one
/// command the scripts use too (`cargo build --workspace --bins`): a `-p` subset unifies the
/// dependencies' features differently, and each different set compiles the AWS SDK again.
pub fn build_functions() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--workspace", "--bins"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
}

/// A running moto server, shared by every test of one test binary.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    /// Holding the pipe keeps moto alive; when the test process exits, the pipe closes and
    /// the wrapper shell stops moto.
    _lifeline: Option<Mutex<ChildStdin>>,
}

/// The moto server of this test binary: `MOTO_ENDPOINT` if set, else one started from the
/// project's venv (`tools/local/moto_server.py`, moto with DynamoDB serialised) on a free port. Panics with the install command
/// when moto is missing: an integration test never skips itself.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        if let Some(endpoint) = std::env::var("MOTO_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        {
            return Moto {
                endpoint,
                _lifeline: None,
            };
        }
        let server = repo_root().join(".venv/bin/moto_server");
        assert!(
            server.exists(),
            "moto is not installed at {}: run `make setup` (or `bash tools/setup.sh`), which \
             creates .venv and installs moto[server] from tools/requirements.txt",
            server.display()
        );
        let port = free_port();
        let root = repo_root();
        let lifeline = spawn_lifeline(&[
            &root.join(".venv/bin/python").to_string_lossy(),
            &root.join("tools/local/moto_server.py").to_string_lossy(),
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        wait_for_port(port, Duration::from_secs(30));
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _lifeline: Some(Mutex::new(lifeline)),
        }
    })
}

/// Runs `command` under `sh`, which stops it when our end of its stdin closes.
#[allow(clippy::zombie_processes)] // the shell outlives us on purpose; init reaps it
fn spawn_lifeline(command: &[&str]) -> ChildStdin {
    let script = r#""$@" >/dev/null 2>&1 & child=$!; read _ignored; kill $child 2>/dev/null; wait $child 2>/dev/null"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run sh");
    // The shell is reaped by init when we exit; we never wait for it.
    child.stdin.take().expect("piped stdin")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "moto server did not start on port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SDK configuration for moto: fixed region and test credentials.
pub async fn sdk_config() -> SdkConfig {
    let moto = moto();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "testkit",
        ))
        .load()
        .await
}

/// A name no other test uses: `<prefix>-<8 hex>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A further index of a service table: its name and its string key attributes.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    /// `true` projects keys only (the index lists ids), `false` every attribute.
    pub keys_only: bool,
}

/// Creates a table of the standard service shape (docs/architecture.md): `pk`/`sk`, the
/// `gsi1` index, a NEW_IMAGE stream and TTL on `expires_at`.
pub async fn create_service_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_service_table_with(client, name, &[]).await;
}

/// [`create_service_table`] with the service's own further indexes (as in its template).
pub async fn create_service_table_with(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    indexes: &[Index],
) {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let gsi1 = Index {
        name: "gsi1",
        pk: "gsi1pk",
        sk: "gsi1sk",
        keys_only: false,
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"));
    for index in std::iter::once(&gsi1).chain(indexes) {
        let projection = if index.keys_only {
            ProjectionType::KeysOnly
        } else {
            ProjectionType::All
        };
        request = request
            .attribute_definitions(attribute(index.pk))
            .attribute_definitions(attribute(index.sk))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.pk, KeyType::Hash))
                    .key_schema(key(index.sk, KeyType::Range))
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .expect("gsi"),
            );
    }
    request
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("stream"),
        )
        .send()
        .await
        .expect("create table");
}

/// Every record currently in `table`'s stream (all shards, from the start), as the Lambda
/// DynamoDB stream event a relay function receives.
pub async fn stream_event(
    config: &SdkConfig,
    table: &str,
) -> aws_lambda_events::event::dynamodb::Event {
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let described = dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe table");
    let arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("table has a stream")
        .to_owned();
    let stream = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream");
    let mut records = Vec::new();
    for shard in stream
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("get records");
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                records.push(lambda_record(record, &arn));
            }
            iterator = page.next_shard_iterator;
        }
    }
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("stream event")
}

fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> serde_json::Value {
    let change = record.dynamodb().expect("stream record");
    let image = |item: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| {
        let item = item.cloned().unwrap_or_default();
        let plain: serde_json::Value = serde_dynamo::from_item(item).expect("image");
        let typed: serde_dynamo::Item = serde_dynamo::to_item(plain).expect("image");
        serde_json::to_value(typed).expect("image")
    };
    serde_json::json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": "us-east-1",
        "eventSourceARN": arn,
        "dynamodb": {
            "ApproximateCreationDateTime": change.approximate_creation_date_time().map_or(0.0, |t| t.as_secs_f64()),
            "Keys": image(change.keys.as_ref()),
            "NewImage": image(change.new_image.as_ref()),
            "SequenceNumber": change.sequence_number(),
            "SizeBytes": change.size_bytes().unwrap_or(0),
            "StreamViewType": "NEW_IMAGE",
        },
    })
}

/// Receives up to 10 messages from `queue_url`, waiting up to `wait` for the first ones.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let deadline = Instant::now() + wait;
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive message");
        let messages = output.messages.unwrap_or_default();
        if !messages.is_empty() || Instant::now() >= deadline {
            return messages;
        }
    }
}

/// The Lambda SQS event for `messages` received from the queue `queue_arn`.
pub fn sqs_event(
    messages: &[aws_sdk_sqs::types::Message],
    queue_arn: &str,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::from(v.as_str())))
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("sqs event")
}

/// A queue receiving the events of `bus` that match `pattern`, through a rule; returns the
/// queue URL and ARN.
pub async fn queue_for_rule(
    config: &SdkConfig,
    bus: &str,
    pattern: serde_json::Value,
) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("queue"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    let rule = unique("rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put targets");
    (queue_url, queue_arn)
}

/// Creates an event bus with a unique name and returns it.
pub async fn create_bus(config: &SdkConfig) -> String {
    let name = unique("bus");
    aws_sdk_eventbridge::Client::new(config)
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("create bus");
    name
}

/// The scope names the HTTP functions get from the template with its default `AppName`
/// (`shop`), and that the request fixtures' tokens carry.
pub fn scopes() -> kit::http::Scopes {
    kit::http::Scopes {
        customer: "shop/orders".into(),
        admin: "shop/admin".into(),
    }
}

/// The whole OpenAPI document: `docs/openapi.yaml` with every `services/*/openapi.yaml`
/// (local_stack::openapi).
pub fn openapi() -> serde_json::Value {
    local_stack::openapi::document(&repo_root())
        .unwrap_or_else(|e| panic!("the OpenAPI document: {e:#}"))
}

/// Checks a service's route table against the OpenAPI document: every (method, path, status)
/// the router declares is documented, and every documented one under `prefix` is routed.
pub fn assert_routes_documented(routes: &[kit::http::Route], prefix: &str) {
    use std::collections::BTreeSet;
    let doc = openapi();
    let mut documented = BTreeSet::new();
    for (path, operations) in doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
    {
        for (method, operation) in operations.as_object().expect("operations") {
            for status in operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
            {
                documented.insert((
                    method.to_uppercase(),
                    path.clone(),
                    status.parse::<u16>().expect("numeric status"),
                ));
            }
        }
    }
    let routed: BTreeSet<(String, String, u16)> = routes
        .iter()
        .flat_map(|r| {
            r.statuses
                .iter()
                .map(|s| (r.method.to_owned(), r.path.to_owned(), *s))
        })
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "missing from the OpenAPI document (the service's openapi.yaml): {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in the OpenAPI document but not in the router: {unrouted:?}"
    );
}

/// One `#[tokio::test]` per contract case and adapter: `memory` and `dynamodb` are expressions
/// (the latter awaited) building the adapter each case runs on, so one suite holds the in-memory
/// twin to the DynamoDB adapter.
#[macro_export]
macro_rules! contract {
    (memory: $memory:expr, dynamodb: $dynamo:expr, cases: [$($case:ident),+ $(,)?]) => {
        mod memory {
            use super::*;
            $(#[tokio::test]
            async fn $case() {
                super::$case(&$memory).await;
            })+
        }
        mod dynamodb {
            use super::*;
            $(#[tokio::test]
            async fn $case() {
                super::$case(&$dynamo.await).await;
            })+
        }
    };
}
