#!/usr/bin/env bash
# The saga page of the local runner (/_local/) in a real browser: starts `local-stack up` on a
# free port (with its own resource prefix, on $MOTO_ENDPOINT when set), mints a dev token, and
# runs tools/local/local-stack/tests/browser/test_saga_page.py (headless Chromium through Playwright):
# places an order, waits for its saga, checks every hop on the timeline and `local-stack trace`,
# and saves a screenshot in .local/saga-page/ (`make screenshot` passes `--screenshot
# docs/img/saga-timeline.png` to refresh the one in the docs). Fails when no Chromium/Chrome is
# installed (tools/setup.sh installs one where apt-get is usable). Log of the stack: .local/saga-page.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

log=.local/saga-page.log
source tools/lib/local-stack.sh
start_local_stack saga-page saga "$log"

token=$("$target/debug/local-stack" token --sub "saga-page-$$")
if ! .venv/bin/python tools/local/local-stack/tests/browser/test_saga_page.py \
  --url "http://127.0.0.1:$port" --token "$token" --cli "$target/debug/local-stack" "$@"; then
  echo "saga-page: the last lines of the local stack ($log):" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
