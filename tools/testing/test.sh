#!/usr/bin/env bash
# The test command (`make test`, and what .ci/run calls): installs what the tests need, starts
# one moto server for the whole run, runs every Rust test with nextest, the dependency checks
# (cargo deny: licences, bans, sources), the deploy smoke test and the OpenAPI fuzzer
# (tools/testing/fuzz-api.sh) against the local stack, the saga page in headless Chromium
# (tools/testing/saga-page.sh), the offline infrastructure checks, then the generated-service test
# (tools/local/new-service/test.sh: `make new-service` on a copy of the repo builds, passes the tests
# that see a service and infra/check.sh, and answers its route on the local stack, with no edit
# outside its folder).
# Exits non-zero on any failure. Every tool it calls is
# installed by tools/setup.sh and called by its path (tools/testing/check-path.sh proves it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

bash tools/setup.sh

# One moto server shared by every test process (each test uses its own resource names).
source tools/lib/moto.sh
start_moto .local/moto-tests.log
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT

# tools/local/moto_server.py's own changes to moto: transactions stay atomic.
.venv/bin/python -m unittest discover -s tools/testing/tests

.local/cargo-nextest/bin/cargo-nextest nextest run --workspace --no-fail-fast
.local/cargo-deny/bin/cargo-deny --offline --locked check licenses bans sources
bash tools/testing/smoke-local.sh
bash tools/testing/saga-page.sh
bash tools/testing/fuzz-api.sh
bash infra/check.sh
bash tools/local/new-service/test.sh
