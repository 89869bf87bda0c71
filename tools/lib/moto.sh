# Sourced by tools/testing/test.sh and tools/local/new-service/test.sh. `start_moto LOG` starts
# tools/local/moto_server.py from .venv on a free port of 127.0.0.1, its output to LOG, sets
# `moto_pid`, exports MOTO_ENDPOINT and waits (up to 10 s) until it accepts connections. The
# caller stops it (its EXIT trap kills $moto_pid).
start_moto() {
  local log=$1 port
  mkdir -p "$(dirname "$log")"
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/python tools/local/moto_server.py -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
  moto_pid=$!
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
}
