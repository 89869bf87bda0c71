//! What the functions talk to: a moto server (the one given by `MOTO_ENDPOINT`, or one started
//! from `./.venv`), the template's tables, queues and bus created in it under a prefix of this
//! run, the environment each function gets, and the data the events refer to. With `--tls` the
//! functions reach moto through [`TlsProxy`] instead, trusting its CA through `AWS_CA_BUNDLE`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, anyhow};
use local_stack::functions::FunctionSpec;
use local_stack::moto::{Endpoints, Moto};
use local_stack::resources::{self, Clients};
use local_stack::template::Context;
use orders::domain::{CustomerId, Order, OrderId, PlaceOrder};
use orders::ports::OrderRepository as _;

use crate::tls::TlsProxy;

/// The region every function and client uses.
pub const REGION: &str = "eu-west-1";

/// The template's default `AppName`, the prefix of every event source (`shop.orders`).
pub const APP: &str = "shop";

/// The customer (JWT `sub`) of the fixtures.
pub const CUSTOMER: &str = "customer-1";

/// The moto server, the resources of this run and the ids the events may refer to.
#[derive(Debug)]
pub struct World {
    pub endpoint: String,
    pub clients: Clients,
    specs: BTreeMap<String, FunctionSpec>,
    orders_table: String,
    /// Orders seeded (or confirmed) during the run, newest last.
    pub orders: Mutex<Vec<String>>,
    /// Orders that have a payment (from payments-events), newest last.
    pub paid_orders: Mutex<Vec<String>>,
    /// The TLS endpoint the functions use instead of moto's, with `--tls`.
    pub tls: Option<TlsProxy>,
    _moto: Option<Moto>,
}

impl World {
    /// The template's functions.
    pub fn specs(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.specs.values()
    }

    /// The short names (`orders-relay`) of the template's functions that serve an event: every
    /// function of a service (a deployment hook, which has none, is not one).
    pub fn service_functions(&self) -> Vec<String> {
        self.specs
            .values()
            .filter(|s| {
                !(s.routes.is_empty()
                    && s.sqs.is_empty()
                    && s.streams.is_empty()
                    && s.schedules.is_empty())
            })
            .map(|s| s.short_name.clone())
            .collect()
    }
}

/// The functions of `template`, as the local stack runs them.
fn functions(
    template: &local_stack::template::Template,
    ctx: &Context,
    root: &Path,
) -> anyhow::Result<Vec<FunctionSpec>> {
    local_stack::functions::functions(template, ctx, root, &root.join("infra"))
}

/// The template's functions (the platform and every service stack), without a moto.
pub fn template_functions(root: &Path) -> anyhow::Result<Vec<FunctionSpec>> {
    let template = local_stack::stacks::load(root)?;
    let mut ctx = Context::new(&template, "bench", REGION, &HashMap::new())?;
    resources::name_resources(&template, &mut ctx, None)?;
    functions(&template, &ctx, root)
}

impl World {
    /// Connects to moto (starting one when `MOTO_ENDPOINT` is unset) and creates the template's
    /// resources under a prefix unique to this run; with `tls`, starts the TLS endpoint in front
    /// of moto that the functions get instead (the bench's own calls stay plain).
    pub async fn start(root: &Path, tls: bool) -> anyhow::Result<Self> {
        let (endpoint, moto) = match std::env::var("MOTO_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
            _ => {
                let log = target_dir(root).join("bench").join("moto.log");
                let moto = Moto::start(root, false, &log).await?;
                (moto.endpoint.clone(), Some(moto))
            }
        };
        let template = local_stack::stacks::load(root)?;
        let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut ctx = Context::new(&template, &prefix, REGION, &HashMap::new())?;
        resources::name_resources(&template, &mut ctx, Some(&prefix))?;
        let clients = Clients::new(&Endpoints::one(&endpoint), REGION).await;
        resources::provision(&template, &mut ctx, &clients, None)
            .await
            .context("creating the template's resources in moto")?;
        let specs: BTreeMap<String, FunctionSpec> = functions(&template, &ctx, root)?
            .into_iter()
            .map(|spec| (spec.short_name.clone(), spec))
            .collect();
        let orders_table = specs
            .get("orders-http")
            .and_then(|s| s.env.get("ORDERS_TABLE"))
            .cloned()
            .ok_or_else(|| anyhow!("orders-http has no ORDERS_TABLE in the template"))?;
        let tls = if tls {
            Some(TlsProxy::start(root, &endpoint).await?)
        } else {
            None
        };
        Ok(Self {
            endpoint,
            clients,
            specs,
            orders_table,
            orders: Mutex::default(),
            paid_orders: Mutex::default(),
            tls,
            _moto: moto,
        })
    }

    /// The environment Lambda would give `function` (its template variables, or those of
    /// `orders-http` for a function not in the template, the baselines), pointed at moto (or at
    /// the TLS endpoint in front of it, with its CA as `AWS_CA_BUNDLE`).
    pub fn env(&self, function: &str) -> BTreeMap<String, String> {
        let spec = self.specs.get(function);
        let mut env = spec
            .or_else(|| self.specs.get("orders-http"))
            .map(|s| s.env.clone())
            .unwrap_or_default();
        let mut set = |k: &str, v: &str| {
            env.insert(k.to_owned(), v.to_owned());
        };
        match &self.tls {
            Some(tls) => {
                set("AWS_ENDPOINT_URL", &tls.endpoint);
                set("AWS_CA_BUNDLE", &tls.ca.display().to_string());
            }
            None => set("AWS_ENDPOINT_URL", &self.endpoint),
        }
        set("AWS_REGION", REGION);
        set("AWS_DEFAULT_REGION", REGION);
        set("AWS_ACCESS_KEY_ID", "testing");
        set("AWS_SECRET_ACCESS_KEY", "testing");
        set("AWS_SESSION_TOKEN", "testing");
        set("AWS_EC2_METADATA_DISABLED", "true");
        set("AWS_LAMBDA_FUNCTION_NAME", function);
        set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
        set(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            &format!("/aws/lambda/{function}"),
        );
        set("AWS_LAMBDA_LOG_STREAM_NAME", "bench");
        set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
        set("TZ", ":UTC");
        if let Some(spec) = spec {
            if let Some(f) = &spec.log_format {
                set("AWS_LAMBDA_LOG_FORMAT", f);
            }
            if let Some(l) = &spec.app_log_level {
                set("AWS_LAMBDA_LOG_LEVEL", l);
            }
        }
        env
    }

    /// Stores a new PENDING order of [`CUSTOMER`] through the orders adapter; returns its id.
    pub async fn seed_order(&self) -> anyhow::Result<String> {
        let request: PlaceOrder = serde_json::from_value(serde_json::json!({
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": {"amount": 1250, "currency": "EUR"}}],
            "card_token": "tok_approve",
        }))?;
        let new = request
            .validate()
            .map_err(|v| anyhow!("seed order is invalid: {v:?}"))?;
        let (order, _) = Order::place(
            OrderId::generate(),
            CustomerId::new(CUSTOMER),
            new,
            chrono::Utc::now(),
        );
        let repo = orders::adapters::dynamodb::DynamoOrders::new(
            self.clients.dynamodb.clone(),
            self.orders_table.clone(),
        );
        repo.insert(&order, &[], None)
            .await
            .context("seeding an order")?;
        let id = order.id.to_string();
        lock(&self.orders).push(id.clone());
        Ok(id)
    }

    /// The newest order of the run, seeding one when there is none.
    pub async fn some_order(&self) -> anyhow::Result<String> {
        let last = lock(&self.orders).last().cloned();
        match last {
            Some(id) => Ok(id),
            None => self.seed_order().await,
        }
    }
}

/// The workspace root (local_stack::stack::running_workspace).
pub fn repo_root() -> PathBuf {
    local_stack::stack::running_workspace(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
