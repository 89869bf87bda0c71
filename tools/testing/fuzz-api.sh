#!/usr/bin/env bash
# OpenAPI-driven fuzzing of the HTTP API (`make test` runs it after tools/testing/smoke-local.sh):
# starts `local-stack up` on a free port (with its own resource prefix, on $MOTO_ENDPOINT when
# set) and runs schemathesis (pinned in tools/requirements.txt) on the OpenAPI document
# (`local-stack openapi`: docs/openapi.yaml with every services/*/openapi.yaml) against it,
# once per caller:
#   customer   a token with the customer scope: every operation with the document's example,
#              valid and invalid inputs (phases examples, coverage, fuzzing) and sequences that
#              follow the document's links (stateful: place an order, then read, cancel it and
#              read its payment); every accepted request is sent again without a token and with
#              a forged one, which must be refused (check ignored_auth);
#   admin      a token with the customer and admin scopes, the same phases;
#   no-scope   a valid token without the customer scope (the authorizer's 403), coverage phase;
#   anonymous  no Authorization header at all (the authorizer's 401), coverage phase.
# Checks on every response: no 5xx (not_a_server_error); status code, content type, headers and
# body as documented (status_code_conformance, content_type_conformance,
# response_headers_conformance, response_schema_conformance); with a valid token, a request that
# breaks the document is refused (negative_data_rejection). Fixed seed (FUZZ_SEED) and a bounded
# number of cases per operation and phase (FUZZ_EXAMPLES, default 50), one worker: the same
# cases every run, in a few minutes. Exits non-zero on any failure. Output, JUnit reports and the
# stack's log: .local/fuzz-api/.
#   FUZZ_SPEC=path   fuzz against another document (e.g. a broken copy, to see it fail)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

examples=${FUZZ_EXAMPLES:-50}
seed=${FUZZ_SEED:-20261130}
out=.local/fuzz-api
mkdir -p "$out"
log=$out/stack.log
source tools/lib/local-stack.sh
start_local_stack fuzz-api fuzz "$log"

if [ -n "${FUZZ_SPEC:-}" ]; then
  spec=$(realpath "$FUZZ_SPEC")
else
  spec=$root/$out/openapi.yaml
  "$target/debug/local-stack" openapi >"$spec"
fi

token() { "$target/debug/local-stack" token "$@"; }
customer=$(token --sub fuzz-customer)
admin=$(token --sub fuzz-admin --scopes "shop/orders shop/admin")
no_scope=$(token --sub fuzz-no-scope --no-scopes)

conformance=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# run NAME PHASES CHECKS [schemathesis args...]
run() {
  local name=$1 phases=$2 checks=$3 started
  shift 3
  started=$(date +%s)
  echo "fuzz-api: $name (phases $phases)"
  # From $out: schemathesis keeps its replay cache (.schemathesis/) in the working directory.
  if ! (cd "$out" && "$root/.venv/bin/schemathesis" run "$spec" \
    --url "http://127.0.0.1:$port" \
    --phases "$phases" --mode all --checks "$checks" \
    --max-examples "$examples" --seed "$seed" \
    --generation-database none --workers 1 --request-timeout 30 \
    --suppress-health-check too_slow,filter_too_much \
    --no-color --report junit --report-junit-path "$name.xml" \
    "$@") | tee "$out/$name.txt"; then
    echo "fuzz-api: FAIL ($name); the stack's log: $log" >&2
    failed=1
  fi
  summary+=("$name: $(grep -E '^ +[0-9]+ generated' "$out/$name.txt" | sed 's/^ *//'), $(( $(date +%s) - started )) s")
}

failed=0
summary=()
all=examples,coverage,fuzzing,stateful
run customer "$all" "$conformance,ignored_auth,negative_data_rejection" -H "Authorization: Bearer $customer"
run admin "$all" "$conformance,negative_data_rejection" -H "Authorization: Bearer $admin"
run no-scope coverage "$conformance" -H "Authorization: Bearer $no_scope"
run anonymous coverage "$conformance"
printf 'fuzz-api: %s\n' "${summary[@]}"
exit "$failed"
