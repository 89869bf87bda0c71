//! Starts the project-local moto servers: `./.venv/bin/python tools/local/moto_server.py`, moto with
//! its DynamoDB backend serialised (see that file).
//! A stack runs one per DynamoDB table and one for every other service ([`Motos`]), so that the
//! functions' AWS calls spread over several Python interpreters instead of queueing behind one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// A moto server this process started; killed on drop.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1, logging to `log`. When it is not installed,
    /// runs `bash tools/setup.sh` first if `install` is true, else fails saying how to install
    /// it.
    pub async fn start(root: &Path, install: bool, log: &Path) -> anyhow::Result<Self> {
        let bin = root.join(".venv/bin/moto_server");
        if !bin.exists() {
            if !install {
                bail!(
                    "moto not installed: run bash tools/setup.sh (expected {})",
                    bin.display()
                );
            }
            eprintln!("local-stack: moto not found, running bash tools/setup.sh --light");
            let status = Command::new("bash")
                .args(["tools/setup.sh", "--light"])
                .current_dir(root)
                .status()
                .await?;
            if !status.success() || !bin.exists() {
                bail!("bash tools/setup.sh failed; moto is needed (tools/requirements.txt)");
            }
        }
        let port = free_port()?;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::File::create(log)?;
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tools/local/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until_listening(port, Duration::from_secs(30)).await?;
        Ok(Self { endpoint, child })
    }

    /// Stops moto now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The moto servers of a stack: one per DynamoDB table (with its stream) and one for every other
/// service. A function touches one table only (its policy allows no other), so its DynamoDB
/// calls queue behind no other service's.
#[derive(Debug)]
pub struct Motos {
    /// Every service but DynamoDB: SQS, EventBridge (whose rules deliver to SQS in the same
    /// process), and whatever else a template provisions.
    pub aws: Moto,
    /// By table name: its moto.
    pub tables: BTreeMap<String, Moto>,
}

impl Motos {
    /// Starts them (see [`Moto::start`]), logging to `moto.log` and `moto-<table>.log` in
    /// `log_dir`.
    pub async fn start(
        root: &Path,
        install: bool,
        log_dir: &Path,
        tables: &[String],
    ) -> anyhow::Result<Self> {
        // The first installs moto when asked; the others start once it is there.
        let aws = Moto::start(root, install, &log_dir.join("moto.log")).await?;
        let started = futures::future::try_join_all(tables.iter().map(|table| async move {
            let log = log_dir.join(format!("moto-{table}.log"));
            Ok::<_, anyhow::Error>((table.clone(), Moto::start(root, false, &log).await?))
        }))
        .await?;
        Ok(Self {
            aws,
            tables: started.into_iter().collect(),
        })
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            aws: self.aws.endpoint.clone(),
            tables: self
                .tables
                .iter()
                .map(|(table, moto)| (table.clone(), moto.endpoint.clone()))
                .collect(),
        }
    }

    /// Stops them now.
    pub async fn stop(self) {
        self.aws.stop().await;
        for moto in self.tables.into_values() {
            moto.stop().await;
        }
    }
}

/// Where a stack's AWS calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Every service, and every table not in `tables` (`AWS_ENDPOINT_URL`).
    pub aws: String,
    /// By table name: the endpoint of that table and its stream (empty when the stack was given
    /// one moto).
    pub tables: BTreeMap<String, String>,
}

impl Endpoints {
    /// One endpoint for every service and table (an already running moto).
    pub fn one(endpoint: &str) -> Self {
        Self {
            aws: endpoint.to_owned(),
            tables: BTreeMap::new(),
        }
    }

    /// Where `table` and its stream are.
    pub fn table(&self, table: &str) -> &str {
        self.tables.get(table).map_or(&self.aws, String::as_str)
    }

    /// The SDK's variables that send the calls of a process whose environment is `env` there:
    /// `AWS_ENDPOINT_URL`, and `AWS_ENDPOINT_URL_DYNAMODB` at the moto of the table the
    /// environment names. A process that names tables of two motos is refused.
    pub fn env(
        &self,
        env: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut vars = vec![("AWS_ENDPOINT_URL", self.aws.clone())];
        let named: Vec<&String> = self
            .tables
            .iter()
            .filter(|(table, _)| env.values().any(|v| v == *table))
            .map(|(_, endpoint)| endpoint)
            .collect();
        match named.as_slice() {
            [] => {}
            [endpoint] => vars.push(("AWS_ENDPOINT_URL_DYNAMODB", (*endpoint).clone())),
            _ => anyhow::bail!(
                "the environment names tables on {} motos; a function may use one table",
                named.len()
            ),
        }
        Ok(vars)
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub async fn wait_until_listening(port: u16, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "nothing listening on port {port} after {}s",
        limit.as_secs()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            aws: "http://aws".into(),
            tables: [
                ("orders".into(), "http://o".into()),
                ("notify".into(), "http://n".into()),
            ]
            .into(),
        }
    }

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn a_function_gets_the_moto_of_the_table_its_environment_names() {
        let vars = endpoints()
            .env(&env(&[
                ("ORDERS_TABLE", "orders"),
                ("SERVICE_NAME", "orders"),
            ]))
            .unwrap();
        assert_eq!(
            vars,
            [
                ("AWS_ENDPOINT_URL", "http://aws".to_owned()),
                ("AWS_ENDPOINT_URL_DYNAMODB", "http://o".to_owned())
            ]
        );
        let none = endpoints().env(&env(&[("BUS", "shop")])).unwrap();
        assert_eq!(none, [("AWS_ENDPOINT_URL", "http://aws".to_owned())]);
        let one_moto = Endpoints::one("http://m")
            .env(&env(&[("T", "orders")]))
            .unwrap();
        assert_eq!(one_moto, [("AWS_ENDPOINT_URL", "http://m".to_owned())]);
    }

    #[test]
    fn a_function_that_names_two_tables_is_refused() {
        let e = endpoints()
            .env(&env(&[("A", "orders"), ("B", "notify")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("a function may use one table"),
            "{e}"
        );
    }
}
