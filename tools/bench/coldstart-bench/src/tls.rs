//! `--tls`: tools/bench/tls_proxy.py in front of moto, so that a function pays the TCP + TLS
//! handshake a new sandbox pays to DynamoDB or EventBridge. The proxy's throwaway CA
//! (`.local/tls/ca.pem`) reaches the functions only through `AWS_CA_BUNDLE`; it counts the
//! connections it accepts, so a run can tell which step opened one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The running proxy; killed on drop.
#[derive(Debug)]
pub struct TlsProxy {
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The CA that signed the proxy's certificate.
    pub ca: PathBuf,
    connections: Arc<AtomicU64>,
    _child: Child,
    reader: JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl TlsProxy {
    /// Starts `tools/bench/tls_proxy.py` with the venv's Python in front of `upstream` (moto's
    /// `http://host:port`), its certificates in `<root>/.local/tls`.
    pub async fn start(root: &Path, upstream: &str) -> anyhow::Result<Self> {
        let python = root.join(".venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root.join("tools/bench/tls_proxy.py"))
            .args(["--upstream", upstream, "--connections", "--dir"])
            .arg(root.join(".local/tls"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting tools/bench/tls_proxy.py with {}",
                    python.display()
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("tls_proxy.py has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("tls_proxy.py did not start within 20 s")??
            .ok_or_else(|| anyhow!("tls_proxy.py exited before listening"))?;
        let (endpoint, ca) = parse_listening(&first)?;
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("connection ") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Ok(Self {
            endpoint,
            ca,
            connections,
            _child: child,
            reader,
        })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// `listening https://127.0.0.1:PORT ca=PATH` → (endpoint, CA path).
fn parse_listening(line: &str) -> anyhow::Result<(String, PathBuf)> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("listening"), Some(endpoint), Some(ca)) if endpoint.starts_with("https://") => {
            let ca = ca
                .strip_prefix("ca=")
                .ok_or_else(|| anyhow!("no ca= in {line:?}"))?;
            Ok((endpoint.to_owned(), PathBuf::from(ca)))
        }
        _ => bail!("unexpected first line from tls_proxy.py: {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_s_first_line_gives_its_endpoint_and_ca() {
        let (endpoint, ca) =
            parse_listening("listening https://127.0.0.1:4431 ca=/r/.local/tls/ca.pem").unwrap();
        assert_eq!(endpoint, "https://127.0.0.1:4431");
        assert_eq!(ca, PathBuf::from("/r/.local/tls/ca.pem"));
        assert!(parse_listening("Traceback (most recent call last):").is_err());
    }
}
