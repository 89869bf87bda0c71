#!/usr/bin/env bash
# Runs the deploy pipeline's smoke test (infra/smoke.sh) against the local stack, so the script
# that gates staging and prod is exercised by every `make test`: starts `local-stack up` on a
# free port (with its own resource prefix, on $MOTO_ENDPOINT when set), runs
# `SMOKE_LOCAL=1 infra/smoke.sh` against it, and stops it. Exits non-zero when the smoke test
# fails or the stack does not come up. Log of the stack: .local/smoke-local.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

log=.local/smoke-local.log
source tools/lib/local-stack.sh
start_local_stack smoke-local smoke "$log"

if ! SMOKE_LOCAL=1 LOCAL_STACK="$target/debug/local-stack" API_URL="http://127.0.0.1:$port" bash infra/smoke.sh; then
  echo "smoke-local: the last lines of the local stack ($log):" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
