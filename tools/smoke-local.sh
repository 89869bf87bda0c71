#!/usr/bin/env bash
# Runs the deploy pipeline's smoke test (infra/smoke.sh) against the local stack, so the script
# that gates staging and prod is exercised by every `make test`: starts `local-stack up` on a
# free port (with its own resource prefix, on $MOTO_ENDPOINT when set), runs
# `SMOKE_LOCAL=1 infra/smoke.sh` against it, and stops it. Exits non-zero when the smoke test
# fails or the stack does not come up. Log of the stack: .local/smoke-local.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mkdir -p .local
log=.local/smoke-local.log
: >"$log"
# The runner and the function binaries it starts (debug builds, as `make run`).
nice -n 10 cargo build -q -p local-stack --bins
nice -n 10 cargo build -q -p orders -p payments -p notify --bins

port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
args=(up --no-build --port "$port" --prefix "smoke$$" --param QueueVisibilityTimeout=10)
if [ -n "${MOTO_ENDPOINT:-}" ]; then
  args+=(--aws-endpoint "$MOTO_ENDPOINT")
fi
target=${CARGO_TARGET_DIR:-target}
"$target/debug/local-stack" "${args[@]}" >"$log" 2>&1 &
stack_pid=$!
stop() {
  kill "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 1 600); do
  grep -q '^local-stack: ready' "$log" && break
  if ! kill -0 "$stack_pid" 2>/dev/null; then
    echo "smoke-local: the local stack exited before it was ready:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q '^local-stack: ready' "$log" || {
  echo "smoke-local: the local stack was not ready after 120 s:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

if ! SMOKE_LOCAL=1 API_URL="http://127.0.0.1:$port" bash infra/smoke.sh; then
  echo "smoke-local: the last lines of the local stack ($log):" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
