# Sourced by the scripts that run something against the local stack (tools/testing/smoke-local.sh,
# tools/testing/saga-page.sh, tools/testing/fuzz-api.sh). `start_local_stack NAME PREFIX LOG` builds the runner and the function binaries
# (debug, one build of the whole workspace), starts `local-stack up` on a free port with its own
# resource prefix PREFIX<pid> (on $MOTO_ENDPOINT when set), stops it on exit, and waits until it is ready.
# It writes the stack's output to LOG (created, or emptied), sets `port` and `target`; on failure it
# prints the stack's last lines and exits 1.
start_local_stack() {
  local name=$1 prefix=$2
  stack_log=$3
  mkdir -p "$(dirname "$stack_log")"
  nice -n 10 cargo build -q --workspace --bins
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local args=(up --no-build --port "$port" --prefix "$prefix$$" --param QueueVisibilityTimeout=10)
  if [ -n "${MOTO_ENDPOINT:-}" ]; then
    args+=(--aws-endpoint "$MOTO_ENDPOINT")
  fi
  target=${CARGO_TARGET_DIR:-target}
  "$target/debug/local-stack" "${args[@]}" >"$stack_log" 2>&1 &
  stack_pid=$!
  trap 'kill "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true' EXIT

  for _ in $(seq 1 600); do
    grep -q '^local-stack: ready' "$stack_log" && return 0
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      echo "$name: the local stack exited before it was ready:" >&2
      tail -n 40 "$stack_log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "$name: the local stack was not ready after 120 s:" >&2
  tail -n 40 "$stack_log" >&2
  exit 1
}
