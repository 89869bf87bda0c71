//! Starts the project-local moto servers: `./.venv/bin/python tools/local/moto_server.py`, moto with
//! its DynamoDB backend serialised (see that file).
//! A stack runs two ([`Motos`]): one for DynamoDB and its streams, one for every other service,
//! so that the two halves of the functions' AWS calls run on two Python interpreters, not one.

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

/// The two moto servers of a stack.
#[derive(Debug)]
pub struct Motos {
    /// Every service but DynamoDB: SQS, EventBridge (whose rules deliver to SQS in the same
    /// process), and whatever else a template provisions.
    pub aws: Moto,
    /// DynamoDB and DynamoDB Streams.
    pub dynamodb: Moto,
}

impl Motos {
    /// Starts both (see [`Moto::start`]), logging to `moto.log` and `moto-dynamodb.log` in
    /// `log_dir`.
    pub async fn start(root: &Path, install: bool, log_dir: &Path) -> anyhow::Result<Self> {
        // The first installs moto when asked; the second starts once it is there.
        let aws = Moto::start(root, install, &log_dir.join("moto.log")).await?;
        let dynamodb = Moto::start(root, false, &log_dir.join("moto-dynamodb.log")).await?;
        Ok(Self { aws, dynamodb })
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            aws: self.aws.endpoint.clone(),
            dynamodb: self.dynamodb.endpoint.clone(),
        }
    }

    /// Stops both now.
    pub async fn stop(self) {
        self.aws.stop().await;
        self.dynamodb.stop().await;
    }
}

/// Where a stack's AWS calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Every service but DynamoDB (`AWS_ENDPOINT_URL`).
    pub aws: String,
    /// DynamoDB and DynamoDB Streams (`AWS_ENDPOINT_URL_DYNAMODB`): the same as `aws` when the
    /// stack was given one moto.
    pub dynamodb: String,
}

impl Endpoints {
    /// One endpoint for every service (an already running moto).
    pub fn one(endpoint: &str) -> Self {
        Self {
            aws: endpoint.to_owned(),
            dynamodb: endpoint.to_owned(),
        }
    }

    /// The SDK's variables that send a process's calls there.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![("AWS_ENDPOINT_URL", self.aws.clone())];
        if self.dynamodb != self.aws {
            vars.push(("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb.clone()));
        }
        vars
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
