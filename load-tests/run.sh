#!/usr/bin/env bash
# Load test of the order saga (load-tests/README.md): Artillery scenario orders.yml, then
# check.js (every order placed is terminal and notified).
#
#   bash load-tests/run.sh                                   # local stack on 127.0.0.1:3000,
#                                                            # started (and stopped) if not running
#   BASE_URL=https://abc.execute-api…/ TOKEN=… bash load-tests/run.sh
#   bash load-tests/run.sh https://abc.execute-api…/         # same, URL as argument (TOKEN needed)
#
# LOAD_MODE=sequential (`make latency`): instead of Artillery, load-tests/latency.js (sequential
# orders, saga latency p50/p95/p99 from the local stack's timeline; LATENCY_ORDERS, LATENCY_RATE).
# Env: LOAD_PROFILE (release, the default: the functions' release build, as on Lambda; debug:
# the workspace's debug build only, quicker to build), LOAD_DURATION (s, default 60), LOAD_RATE (new virtual users/s, default 1),
# LOAD_DECLINE_PCT (default 30), LOAD_REPLAY_PCT (default 20), LOAD_MAX_POLLS (default 30, 1 s
# apart), LOAD_SETTLE_S (checker's wait for stragglers, default 60), LOAD_STACK_WAIT_S (wait
# for a local stack to come up, default 900: it may have to build the functions);
# thresholds LOAD_MAX_ERROR_PCT (default 1), LOAD_P95_MS (1500), LOAD_P99_MS (3000),
# LOAD_SAGA_P99_MS (15000).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

base=${1:-${BASE_URL:-http://127.0.0.1:3000}}
base=${base%/}
export BASE_URL=$base
case "$base" in
  http://127.0.0.1:*|http://localhost:*) local_mode=1 ;;
  *) local_mode=0 ;;
esac
if [ "$local_mode" = 0 ] && [ -z "${TOKEN:-}" ]; then
  echo "load: TOKEN is needed against $base (a bearer token, e.g. Cognito client-credentials: see docs/deploy.md)" >&2
  exit 2
fi
[ "$local_mode" = 1 ] && unset TOKEN

run_id=$(date -u +%Y%m%dT%H%M%SZ)
out=$repo/.local/load-tests/$run_id
mkdir -p "$out"
export LOAD_RUN_ID=$run_id LOAD_OUT=$out/orders.jsonl
export ARTILLERY_DISABLE_TELEMETRY=true
echo "load: run $run_id against $base; results in ${out#"$repo"/}"

if [ ! -x "$here/node_modules/.bin/artillery" ]; then
  echo "load: installing Artillery (npm ci in load-tests/)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi

stack_pid=
stop_stack() {
  if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null; then
    echo "load: stopping the local stack (pid $stack_pid)"
    kill -TERM "$stack_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$stack_pid" 2>/dev/null || break; sleep 0.5; done
    # whatever is left of its process group (setsid made it the leader)
    kill -KILL -- "-$stack_pid" 2>/dev/null || true
  fi
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

api_up() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$base/v1/orders" 2>/dev/null | grep -q '^401$'; }

if [ "$local_mode" = 1 ]; then
  if api_up; then
    echo "load: using the local stack already serving $base"
  else
    port=${base##*:}
    # The whole workspace, as every build here (a `-p` build unifies features differently).
    echo "load: building the workspace (cargo build --workspace --bins)"
    cargo build -q --workspace --bins
    stack_args=(up --port "$port")
    if [ "${LOAD_PROFILE:-release}" = release ]; then
      # The functions as Lambda runs them: the release build `make bench` makes (same command,
      # so the two share it), run by the (debug) local-stack.
      packages=()
      for dir in services/*/; do packages+=(-p "$(basename "$dir")"); done
      echo "load: building the functions for release (cargo build --release ${packages[*]} -p outbox-relay -p baselines)"
      cargo build -q --release "${packages[@]}" -p outbox-relay -p baselines
      stack_args+=(--release --no-build)
    fi
    echo "load: starting the local stack (local-stack ${stack_args[*]}; log ${out#"$repo"/}/local-stack.log)"
    setsid "${CARGO_TARGET_DIR:-target}/debug/local-stack" "${stack_args[@]}" >"$out/local-stack.log" 2>&1 &
    stack_pid=$!
    deadline=$(( $(date +%s) + ${LOAD_STACK_WAIT_S:-900} ))
    until api_up; do
      if ! kill -0 "$stack_pid" 2>/dev/null; then
        echo "load: the local stack exited; its log:" >&2; tail -30 "$out/local-stack.log" >&2; exit 1
      fi
      [ "$(date +%s)" -lt "$deadline" ] || { echo "load: the local stack is not up after ${LOAD_STACK_WAIT_S:-900} s" >&2; exit 1; }
      sleep 1
    done
    echo "load: local stack up"
  fi
  [ -f .local/local-stack/jwt.json ] || { echo "load: no .local/local-stack/jwt.json (local signing key)" >&2; exit 1; }
fi

if [ "${LOAD_MODE:-}" = sequential ]; then
  # `make latency`: sequential orders, saga latency from the local stack's timeline.
  node "$here/latency.js" | tee "$out/latency.txt"
  exit "${PIPESTATUS[0]}"
fi

# Thresholds (README.md "Thresholds"; the same defaults as orders.yml): % of virtual users that
# did not complete, API p95/p99 and the saga's p99 time to a terminal state, in ms.
overrides=$(printf '{"config":{"phases":[{"name":"sustained","duration":%d,"arrivalRate":%s}],"ensure":{"maxErrorRate":%s,"thresholds":[{"http.response_time.p95":%d},{"http.response_time.p99":%d},{"orders.time_to_terminal.p99":%d}]}}}' \
  "${LOAD_DURATION:-60}" "${LOAD_RATE:-1}" "${LOAD_MAX_ERROR_PCT:-1}" \
  "${LOAD_P95_MS:-1500}" "${LOAD_P99_MS:-3000}" "${LOAD_SAGA_P99_MS:-15000}")
echo "load: artillery: ${LOAD_DURATION:-60} s at ${LOAD_RATE:-1} new customers/s"
set +e
"$here/node_modules/.bin/artillery" run --target "$base" --overrides "$overrides" \
  --output "$out/report.json" "$here/orders.yml" 2>&1 | tee "$out/artillery.log"
artillery_rc=${PIPESTATUS[0]}
set -e

echo
echo "load: summary"
[ -f "$out/report.json" ] && node "$here/summarize.js" "$out/report.json" | tee "$out/summary.txt"
echo
set +e
node "$here/check.js" "$LOAD_OUT" 2>&1 | tee "$out/check.log"
check_rc=${PIPESTATUS[0]}
set -e

if [ "$artillery_rc" != 0 ] || [ "$check_rc" != 0 ]; then
  echo "load: FAIL (artillery exit $artillery_rc: thresholds/errors; checker exit $check_rc). Logs: ${out#"$repo"/}, .local/local-stack/logs/" >&2
  exit 1
fi
echo "load: OK (${out#"$repo"/})"
