#!/usr/bin/env bash
# The generated-service test (`make test` runs it): on a copy of the repository (its tracked and
# untracked files, modification times kept, so the build reuses this checkout's target dir),
# `make new-service NAME=widgets` must
#   - edit nothing outside services/widgets/ (and refuse a taken or malformed name);
#   - build, and pass every Rust test of the workspace (nextest): its own (HTTP and events on the
#     memory twin, DynamoDB on moto, template and OpenAPI against the code) and all the others
#     with it in the stacks (the cross-service template test, the bench's catalog and smoke run,
#     the deploy hook against every function, the e2e saga on the local stack, ...);
#   - pass infra/check.sh with its stack (cfn-lint, transform, guard, checkov, the assertions);
#   - answer its route on the local stack: GET /v1/widgets is 200, and an order placed and
#     confirmed through the saga shows up in it.
# Needs tools/setup.sh to have run. Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
name=widgets
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

copy=$(mktemp -d "${TMPDIR:-/tmp}/new-service.XXXXXX")
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$copy" -xpf -
# The installed tools, shared (tools/setup.sh installed them here).
ln -s "$root/.venv" "$copy/.venv"
mkdir -p "$copy/.local"
for tool in cfn-guard node cargo-nextest; do
  ln -s "$root/.local/$tool" "$copy/.local/$tool"
done
cd "$copy"

fail() {
  echo "new-service test: FAIL: $*" >&2
  exit 1
}
step() { echo "new-service test: $*"; }

# Every file with its checksum, but the new service's.
snapshot() { find . -path ./.venv -prune -o -path ./.local -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | grep -v " ./services/$name/"; }

step "names that cannot be a service are refused"
for bad in orders Bad x kit; do
  if make -s new-service NAME="$bad" >/dev/null 2>&1; then
    fail "make new-service NAME=$bad was accepted"
  fi
done

step "make new-service NAME=$name edits nothing outside services/$name/"
before=$(snapshot)
make -s new-service NAME="$name"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  fail "the generator changed files outside services/$name/"
fi
[ -f "services/$name/template.yaml" ] || fail "no services/$name/template.yaml"

# A moto server of its own: the run before this one left a thousand queues in the shared one,
# more than moto's ListQueues returns (redrive's tests list queues).
source tools/lib/moto.sh
start_moto .local/moto-new-service.log
trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$copy"' EXIT

step "build and every Rust test of the workspace, the new service's among them"
nice cargo build -q --workspace --bins
.local/cargo-nextest/bin/cargo-nextest nextest run --workspace --no-fail-fast
# The run above must have had the new service's own tests.
.local/cargo-nextest/bin/cargo-nextest nextest list --workspace -E "package($name)" 2>/dev/null |
  grep -q "template::the_template_matches_the_code" || fail "package $name has no template test"

step "infra/check.sh with services/$name/template.yaml"
bash infra/check.sh | tee .local/infra-check.txt | grep -E "FAIL|passed" || true
grep -q "services/$name/template.yaml" .local/infra-check.txt || fail "infra/check.sh did not check services/$name/template.yaml"
grep -Eq '^[0-9]+ passed, 0 failed$' .local/infra-check.txt || fail "infra/check.sh failed"

step "the local stack serves GET /v1/$name, and a confirmed order shows up in it"
# In a subshell: start_local_stack sets its own EXIT trap (it stops the stack).
(
source tools/lib/local-stack.sh
start_local_stack new-service newsvc .local/new-service-stack.log
token=$("$target/debug/local-stack" token --sub new-service-test)
.venv/bin/python - "$port" "$token" "$name" <<'PY' || { tail -n 40 .local/new-service-stack.log >&2; fail "the route of the new service"; }
import json, sys, time, urllib.request
port, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
status, body = call("GET", f"/v1/{name}")
assert status == 200 and body == {"items": [], "next_cursor": None}, (status, body)
status, order = call("POST", "/v1/orders", {"lines": [{"sku": "BOOK-1", "quantity": 1, "unit_price": {"amount": 1250, "currency": "EUR"}}], "card_token": "tok_approve"})
assert status == 201, (status, order)
deadline = time.time() + 60
while time.time() < deadline:
    status, body = call("GET", f"/v1/{name}")
    assert status == 200, (status, body)
    if [item["order_id"] for item in body["items"]] == [order["id"]]:
        print(f"new-service test: GET /v1/{name} lists the confirmed order {order['id']}")
        break
    time.sleep(0.5)
else:
    raise SystemExit(f"order {order['id']} not in GET /v1/{name} after 60 s: {body}")
PY
)
step "ok"
