//! The Python side of the comparison: a venv under `.local/bench-python` with `awslambdaric`,
//! `boto3` and `aws-lambda-powertools` (pinned in `python/requirements.txt`), created on first
//! use.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// The venv's interpreter, creating the venv first when it is missing or incomplete. Fails
/// (with the reason, which the report prints) when no `python3` is found or pip cannot install.
pub async fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(".local/bench-python");
    let python = venv.join("bin/python");
    let requirements = root.join("tools/bench/coldstart-bench/python/requirements.txt");
    if python.exists() && imports_ok(&python).await {
        return Ok(python);
    }
    let system = find_python3().context("python3 is not on PATH")?;
    eprintln!(
        "coldstart-bench: installing the Python comparison into {}",
        venv.display()
    );
    let status = Command::new(&system)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await?;
    if !status.success() {
        bail!("python3 -m venv failed ({status})");
    }
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .await?;
    if !status.success() || !imports_ok(&python).await {
        bail!("pip could not install {}", requirements.display());
    }
    Ok(python)
}

async fn imports_ok(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import awslambdaric, boto3, aws_lambda_powertools.event_handler",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

fn find_python3() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_file())
}
