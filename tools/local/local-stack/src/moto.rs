//! Starts the project-local moto server: `./.venv/bin/python tools/local/moto_server.py`, moto with
//! its DynamoDB backend serialised (see that file), logging to `.local/local-stack/logs/moto.log`.

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
    /// Starts moto on a free port of 127.0.0.1. When it is not installed, runs
    /// `bash tools/setup.sh` first if `install` is true, else fails saying how to install it.
    pub async fn start(root: &Path, install: bool) -> anyhow::Result<Self> {
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
        let logs = root.join(".local/local-stack/logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::File::create(logs.join("moto.log"))?;
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
