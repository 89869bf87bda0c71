//! Creates the template's tables, queues, event buses and rules in moto, named locally.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, anyhow};
use aws_sdk_dynamodb::types as ddb;
use aws_sdk_eventbridge::types as eb;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::moto::Endpoints;
use crate::template::{Context, Resolver, Template};

/// SDK clients pointed at moto.
#[derive(Debug, Clone)]
pub struct Clients {
    /// DynamoDB of every table without a moto of its own (all of them on one moto).
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// By table name: the DynamoDB and Streams clients of a table on a moto of its own.
    tables: BTreeMap<String, (aws_sdk_dynamodb::Client, aws_sdk_dynamodbstreams::Client)>,
}

impl Clients {
    /// Clients for moto's endpoints with fake credentials.
    pub async fn new(endpoints: &Endpoints, region: &str) -> Self {
        let conf = |endpoint: String| {
            let creds = aws_sdk_sqs::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "local-stack",
            );
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(endpoint)
                .region(aws_config::Region::new(region.to_owned()))
                .credentials_provider(creds)
                .load()
        };
        let aws = conf(endpoints.aws.clone()).await;
        let mut tables = BTreeMap::new();
        for (table, endpoint) in &endpoints.tables {
            let c = conf(endpoint.clone()).await;
            tables.insert(
                table.clone(),
                (
                    aws_sdk_dynamodb::Client::new(&c),
                    aws_sdk_dynamodbstreams::Client::new(&c),
                ),
            );
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            streams: aws_sdk_dynamodbstreams::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            events: aws_sdk_eventbridge::Client::new(&aws),
            tables,
        }
    }

    /// The DynamoDB client of `table`.
    pub fn dynamodb_of(&self, table: &str) -> &aws_sdk_dynamodb::Client {
        self.tables.get(table).map_or(&self.dynamodb, |(d, _)| d)
    }

    /// The DynamoDB Streams client of `table`'s stream.
    pub fn streams_of(&self, table: &str) -> &aws_sdk_dynamodbstreams::Client {
        self.tables.get(table).map_or(&self.streams, |(_, s)| s)
    }
}

/// A table as created locally.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub arn: String,
    pub stream_arn: Option<String>,
}

/// A queue as created locally.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
    /// Logical id of the queue its redrive policy moves poison messages to.
    pub dead_letter_queue: Option<String>,
    pub max_receive_count: Option<i64>,
}

/// Every resource the local stack created, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub tables: BTreeMap<String, TableInfo>,
    pub queues: BTreeMap<String, QueueInfo>,
    /// Event bus logical id → name.
    pub buses: BTreeMap<String, String>,
    /// Rule logical id → name.
    pub rules: BTreeMap<String, String>,
}

impl Resources {
    /// The URL of a queue by logical id.
    pub fn queue_url(&self, logical_id: &str) -> anyhow::Result<&str> {
        self.queues
            .get(logical_id)
            .map(|q| q.url.as_str())
            .ok_or_else(|| anyhow!("no queue {logical_id} in the template"))
    }

    /// The URL of the dead-letter queue of a queue (from its redrive policy).
    pub fn dlq_url(&self, logical_id: &str) -> anyhow::Result<&str> {
        let q = self
            .queues
            .get(logical_id)
            .ok_or_else(|| anyhow!("no queue {logical_id}"))?;
        let dlq = q
            .dead_letter_queue
            .as_deref()
            .ok_or_else(|| anyhow!("queue {logical_id} has no redrive policy"))?;
        self.queue_url(dlq)
    }

    /// The name of a table by logical id.
    pub fn table(&self, logical_id: &str) -> anyhow::Result<&str> {
        self.tables
            .get(logical_id)
            .map(|t| t.name.as_str())
            .ok_or_else(|| anyhow!("no table {logical_id} in the template"))
    }

    /// Logical id of the queue whose ARN is `arn`.
    pub fn queue_by_arn(&self, arn: &str) -> Option<(&String, &QueueInfo)> {
        self.queues.iter().find(|(_, q)| q.arn == arn)
    }
}

/// The local name of a resource: its explicit name (prefixed when a prefix is in use and the
/// name does not contain it yet) or `<stack>-<LogicalId>`.
fn local_name(
    explicit: Option<String>,
    logical_id: &str,
    ctx: &Context,
    prefix: Option<&str>,
) -> String {
    match (explicit, prefix) {
        (Some(n), Some(p)) if !n.contains(p) => format!("{p}-{n}"),
        (Some(n), _) => n,
        (None, _) => format!("{}-{logical_id}", ctx.stack_name),
    }
}

/// Names every resource (filling `ctx.refs` / `ctx.attrs`) before anything is created, so that
/// references between resources resolve.
pub fn name_resources(
    template: &Template,
    ctx: &mut Context,
    prefix: Option<&str>,
) -> anyhow::Result<()> {
    let mut refs = HashMap::new();
    let mut attrs = HashMap::new();
    {
        let r = Resolver { template, ctx };
        for (id, res) in &template.resources {
            let prop = |k: &str| -> anyhow::Result<Option<String>> {
                res.properties.get(k).map(|v| r.string(v)).transpose()
            };
            let mut attr = |a: &str, v: String| {
                attrs.insert((id.clone(), a.to_owned()), v);
            };
            match res.kind.as_str() {
                "AWS::DynamoDB::Table" => {
                    let name = local_name(prop("TableName")?, id, ctx, prefix);
                    attr("Arn", ctx.arn("dynamodb", &format!("table/{name}")));
                    refs.insert(id.clone(), name);
                }
                "AWS::SQS::Queue" => {
                    let fifo = res
                        .properties
                        .get("FifoQueue")
                        .is_some_and(|v| v == &Value::Bool(true) || v == "true");
                    let mut name = local_name(prop("QueueName")?, id, ctx, prefix);
                    if fifo && !name.ends_with(".fifo") {
                        name.push_str(".fifo");
                    }
                    attr("Arn", ctx.arn("sqs", &name));
                    attr("QueueName", name.clone());
                    refs.insert(id.clone(), name);
                }
                "AWS::Events::EventBus" => {
                    let name = local_name(prop("Name")?, id, ctx, prefix);
                    attr("Arn", ctx.arn("events", &format!("event-bus/{name}")));
                    attr("Name", name.clone());
                    refs.insert(id.clone(), name);
                }
                "AWS::Events::Rule" => {
                    let name = local_name(prop("Name")?, id, ctx, prefix);
                    attr("Arn", ctx.arn("events", &format!("rule/{name}")));
                    refs.insert(id.clone(), name);
                }
                "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                    let name = local_name(prop("FunctionName")?, id, ctx, prefix);
                    attr("Arn", ctx.arn("lambda", &format!("function:{name}")));
                    refs.insert(id.clone(), name);
                }
                "AWS::Serverless::HttpApi" | "AWS::ApiGatewayV2::Api" => {
                    refs.insert(id.clone(), "local".to_owned());
                }
                "AWS::SNS::Topic" => {
                    let name = local_name(prop("TopicName")?, id, ctx, prefix);
                    refs.insert(id.clone(), ctx.arn("sns", &name));
                }
                _ => {}
            }
        }
    }
    ctx.refs.extend(refs);
    ctx.attrs.extend(attrs);
    Ok(())
}

/// Creates tables, queues, buses and rules in moto, in dependency order; existing resources of
/// the same name are reused.
pub async fn provision(
    template: &Template,
    ctx: &mut Context,
    clients: &Clients,
    visibility_timeout_override: Option<u32>,
) -> anyhow::Result<Resources> {
    let mut out = Resources::default();
    create_tables(template, ctx, clients, &mut out).await?;
    create_queues(
        template,
        ctx,
        clients,
        visibility_timeout_override,
        &mut out,
    )
    .await?;
    create_buses_and_rules(template, ctx, clients, &mut out).await?;
    Ok(out)
}

async fn create_tables(
    template: &Template,
    ctx: &mut Context,
    clients: &Clients,
    out: &mut Resources,
) -> anyhow::Result<()> {
    let mut stream_arns = Vec::new();
    for (id, res) in template.of_kind("AWS::DynamoDB::Table", ctx) {
        let r = Resolver { template, ctx };
        let p = r.resolve(&res.properties)?;
        let name = ctx.refs[id].clone();
        let dynamodb = clients.dynamodb_of(&name);
        let mut req = dynamodb.create_table().table_name(&name);
        for a in arr(&p, "AttributeDefinitions") {
            req = req.attribute_definitions(
                ddb::AttributeDefinition::builder()
                    .attribute_name(s(a, "AttributeName"))
                    .attribute_type(ddb::ScalarAttributeType::from(
                        s(a, "AttributeType").as_str(),
                    ))
                    .build()?,
            );
        }
        for k in key_schema(&p)? {
            req = req.key_schema(k);
        }
        let provisioned = p.get("BillingMode").and_then(Value::as_str) == Some("PROVISIONED");
        let throughput = || {
            ddb::ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(5)
                .build()
        };
        if provisioned {
            req = req
                .billing_mode(ddb::BillingMode::Provisioned)
                .provisioned_throughput(throughput()?);
        } else {
            req = req.billing_mode(ddb::BillingMode::PayPerRequest);
        }
        for g in arr(&p, "GlobalSecondaryIndexes") {
            let mut b = ddb::GlobalSecondaryIndex::builder()
                .index_name(s(g, "IndexName"))
                .set_key_schema(Some(key_schema(g)?))
                .projection(projection(g));
            if provisioned {
                b = b.provisioned_throughput(throughput()?);
            }
            req = req.global_secondary_indexes(b.build()?);
        }
        for l in arr(&p, "LocalSecondaryIndexes") {
            req = req.local_secondary_indexes(
                ddb::LocalSecondaryIndex::builder()
                    .index_name(s(l, "IndexName"))
                    .set_key_schema(Some(key_schema(l)?))
                    .projection(projection(l))
                    .build()?,
            );
        }
        if let Some(view) = p
            .pointer("/StreamSpecification/StreamViewType")
            .and_then(Value::as_str)
        {
            req = req.stream_specification(
                ddb::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(ddb::StreamViewType::from(view))
                    .build()?,
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("creating table {name}"))),
        }
        if p.pointer("/TimeToLiveSpecification/Enabled")
            .is_some_and(|v| v == true || v == "true")
        {
            let attr = p
                .pointer("/TimeToLiveSpecification/AttributeName")
                .and_then(Value::as_str)
                .unwrap_or("ttl");
            dynamodb
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    ddb::TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attr)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("enabling TTL on {name}"))?;
        }
        let desc = dynamodb.describe_table().table_name(&name).send().await?;
        let table = desc
            .table()
            .ok_or_else(|| anyhow!("table {name} not described"))?;
        let stream_arn = table.latest_stream_arn().map(str::to_owned);
        if let Some(sa) = &stream_arn {
            stream_arns.push((id.clone(), sa.clone()));
        }
        let arn = table
            .table_arn()
            .map(str::to_owned)
            .unwrap_or_else(|| ctx.arn("dynamodb", &format!("table/{name}")));
        out.tables.insert(
            id.clone(),
            TableInfo {
                name,
                arn,
                stream_arn,
            },
        );
    }
    for (id, arn) in stream_arns {
        ctx.attrs.insert((id, "StreamArn".into()), arn);
    }
    Ok(())
}

fn arr<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn key_schema(v: &Value) -> anyhow::Result<Vec<ddb::KeySchemaElement>> {
    arr(v, "KeySchema")
        .map(|k| {
            Ok(ddb::KeySchemaElement::builder()
                .attribute_name(s(k, "AttributeName"))
                .key_type(ddb::KeyType::from(s(k, "KeyType").as_str()))
                .build()?)
        })
        .collect()
}

fn projection(v: &Value) -> ddb::Projection {
    let t = v
        .pointer("/Projection/ProjectionType")
        .and_then(Value::as_str)
        .unwrap_or("ALL");
    let non_key: Option<Vec<String>> = v
        .pointer("/Projection/NonKeyAttributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    ddb::Projection::builder()
        .projection_type(ddb::ProjectionType::from(t))
        .set_non_key_attributes(non_key)
        .build()
}

async fn create_queues(
    template: &Template,
    ctx: &mut Context,
    clients: &Clients,
    visibility_timeout_override: Option<u32>,
    out: &mut Resources,
) -> anyhow::Result<()> {
    // All queues first (a redrive policy needs its DLQ to exist), then the redrive policies.
    let mut redrives = Vec::new();
    let mut urls = Vec::new();
    for (id, res) in template.of_kind("AWS::SQS::Queue", ctx) {
        let p = Resolver { template, ctx }.resolve(&res.properties)?;
        let name = ctx.refs[id].clone();
        let mut req = clients.sqs.create_queue().queue_name(&name);
        for (prop, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
            (
                "ReceiveMessageWaitTimeSeconds",
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            ),
            ("FifoQueue", QueueAttributeName::FifoQueue),
            (
                "ContentBasedDeduplication",
                QueueAttributeName::ContentBasedDeduplication,
            ),
        ] {
            if let Some(v) = p.get(prop) {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                req = req.attributes(attr, v);
            }
        }
        if let Some(vt) = visibility_timeout_override {
            req = req.attributes(QueueAttributeName::VisibilityTimeout, vt.to_string());
        }
        let created = req
            .send()
            .await
            .with_context(|| format!("creating queue {name}"))?;
        let url = created
            .queue_url()
            .ok_or_else(|| anyhow!("no URL for queue {name}"))?
            .to_owned();
        let arn = ctx.arn("sqs", &name);
        let mut info = QueueInfo {
            name,
            url: url.clone(),
            arn,
            dead_letter_queue: None,
            max_receive_count: None,
        };
        if let Some(policy) = p.get("RedrivePolicy") {
            let policy = match policy {
                Value::String(text) => serde_json::from_str(text)?,
                other => other.clone(),
            };
            let dlq_arn = s(&policy, "deadLetterTargetArn");
            info.max_receive_count = s(&policy, "maxReceiveCount").trim_matches('"').parse().ok();
            redrives.push((id.clone(), url.clone(), dlq_arn, policy));
        }
        urls.push((id.clone(), url));
        out.queues.insert(id.clone(), info);
    }
    for (id, url, dlq_arn, policy) in redrives {
        let dlq = out.queue_by_arn(&dlq_arn).map(|(l, _)| l.clone());
        if let Some(q) = out.queues.get_mut(&id) {
            q.dead_letter_queue = dlq;
        }
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .with_context(|| format!("setting the redrive policy of {id}"))?;
    }
    for (id, url) in urls {
        ctx.attrs
            .insert((id.clone(), "QueueUrl".into()), url.clone());
        ctx.refs.insert(id, url);
    }
    Ok(())
}

async fn create_buses_and_rules(
    template: &Template,
    ctx: &Context,
    clients: &Clients,
    out: &mut Resources,
) -> anyhow::Result<()> {
    let r = Resolver { template, ctx };
    for (id, _) in template.of_kind("AWS::Events::EventBus", ctx) {
        let name = ctx.refs[id].clone();
        match clients.events.create_event_bus().name(&name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("creating event bus {name}")));
            }
        }
        out.buses.insert(id.clone(), name);
    }
    for (id, res) in template.of_kind("AWS::Events::Rule", ctx) {
        let p = r.resolve(&res.properties)?;
        let name = ctx.refs[id].clone();
        let bus = p
            .get("EventBusName")
            .and_then(Value::as_str)
            .map(|b| b.rsplit('/').next().unwrap_or(b).to_owned())
            .unwrap_or_else(|| "default".to_owned());
        let mut req = clients.events.put_rule().name(&name).event_bus_name(&bus);
        if let Some(pattern) = p.get("EventPattern") {
            let text = match pattern {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            req = req.event_pattern(text);
        }
        if let Some(state) = p.get("State").and_then(Value::as_str) {
            req = req.state(eb::RuleState::from(state));
        }
        if let Some(expr) = p.get("ScheduleExpression").and_then(Value::as_str) {
            req = req.schedule_expression(expr);
        }
        req.send()
            .await
            .with_context(|| format!("creating rule {name}"))?;
        let mut targets = Vec::new();
        for t in arr(&p, "Targets") {
            let mut b = eb::Target::builder().id(s(t, "Id")).arn(s(t, "Arn"));
            if let Some(x) = t.get("Input").and_then(Value::as_str) {
                b = b.input(x);
            }
            if let Some(x) = t.get("InputPath").and_then(Value::as_str) {
                b = b.input_path(x);
            }
            if let Some(dlq) = t.pointer("/DeadLetterConfig/Arn").and_then(Value::as_str) {
                b = b.dead_letter_config(eb::DeadLetterConfig::builder().arn(dlq).build());
            }
            if let Some(rp) = t.get("RetryPolicy") {
                let n = |k: &str| {
                    rp.get(k)
                        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
                };
                b = b.retry_policy(
                    eb::RetryPolicy::builder()
                        .set_maximum_retry_attempts(n("MaximumRetryAttempts").map(|v| v as i32))
                        .set_maximum_event_age_in_seconds(
                            n("MaximumEventAgeInSeconds").map(|v| v as i32),
                        )
                        .build(),
                );
            }
            if let Some(g) = t
                .pointer("/SqsParameters/MessageGroupId")
                .and_then(Value::as_str)
            {
                b = b.sqs_parameters(eb::SqsParameters::builder().message_group_id(g).build());
            }
            targets.push(b.build()?);
        }
        if !targets.is_empty() {
            let resp = clients
                .events
                .put_targets()
                .rule(&name)
                .event_bus_name(&bus)
                .set_targets(Some(targets))
                .send()
                .await
                .with_context(|| format!("adding targets to rule {name}"))?;
            if resp.failed_entry_count() > 0 {
                anyhow::bail!(
                    "rule {name}: {} targets failed: {:?}",
                    resp.failed_entry_count(),
                    resp.failed_entries()
                );
            }
        }
        out.rules.insert(id.clone(), name);
    }
    Ok(())
}
