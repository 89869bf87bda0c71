#!/usr/bin/env bash
# End-to-end smoke test of a deployed stack (the deploy workflow runs it against staging before
# prod) or of the local stack (`make test` runs it through tools/testing/smoke-local.sh): the API
# rejects a request without a token, accepts an order with one, the saga takes the order to a
# terminal state (orders -> payments -> orders), and the payment agrees with it.
#
#   STACK_NAME=shop-staging bash infra/smoke.sh
#   SMOKE_LOCAL=1 API_URL=http://127.0.0.1:3000 bash infra/smoke.sh     # against `make run`
#
# Env: STACK_NAME (read outputs with the AWS CLI) or API_URL; a token from STAGING_TOKEN, else
# with SMOKE_LOCAL=1 one minted by `local-stack token` (API_URL defaults to
# http://127.0.0.1:3000), else the stack's Cognito client-credentials client
# (SmokeClientId/TokenUrl outputs; the secret is read with cognito-idp
# describe-user-pool-client). The order uses the payment simulator: SMOKE_CARD_TOKEN (default
# tok_approve) and SMOKE_EXPECT (CONFIRMED, the default, or CANCELLED for a declining token);
# SMOKE_ORDER_BODY overrides the whole order JSON; SMOKE_TIMEOUT (s, default 90) bounds the
# wait for the saga; SMOKE_APP (default: the stack name's first part, else shop) is the app
# name of the scopes.
set -euo pipefail

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
output() {
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

stack=${STACK_NAME:-}
app=${SMOKE_APP:-${stack%%-*}}
app=${app:-shop}
expect=${SMOKE_EXPECT:-CONFIRMED}
case "$expect" in CONFIRMED) payment_expect=CAPTURED ;; CANCELLED) payment_expect=DECLINED ;;
  *) fail "SMOKE_EXPECT is $expect; want CONFIRMED or CANCELLED" ;; esac
timeout=${SMOKE_TIMEOUT:-90}

if [ -n "${SMOKE_LOCAL:-}" ]; then
  api=${API_URL:-http://127.0.0.1:3000}
else
  api=${API_URL:-$(output ApiUrl)}
fi
api=${api%/}
token=${STAGING_TOKEN:-}
if [ -z "$token" ] && [ -n "${SMOKE_LOCAL:-}" ]; then
  # LOCAL_STACK: a built local-stack binary (tools/testing/smoke-local.sh passes the one it runs, so no
  # `cargo run -p` builds the SDK again for another feature set).
  token=$(${LOCAL_STACK:-cargo run -q -p local-stack --} token --sub "smoke-$$" --scopes "$app/orders")
elif [ -z "$token" ]; then
  pool=$(output UserPoolId)
  client=$(output SmokeClientId)
  token_url=$(output TokenUrl)
  secret=$(aws cognito-idp describe-user-pool-client --user-pool-id "$pool" --client-id "$client" \
    --query UserPoolClient.ClientSecret --output text)
  token=$(curl -fsS -u "$client:$secret" -d grant_type=client_credentials -d "scope=$app/orders" \
    "$token_url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
fi

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT
# status CURL_ARGS...: the HTTP status; the body is in $body_file.
status() { curl -sS -o "$body_file" -w '%{http_code}' --max-time 30 "$@"; }
# field NAME: a top-level field of the JSON body (objects as compact JSON); empty when absent.
field() {
  python3 -c 'import json, sys
try:
    value = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except (ValueError, AttributeError):
    value = ""
print(json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else value)' \
    "$body_file" "$1"
}

code=$(status "$api/v1/orders")
[ "$code" = 401 ] || fail "GET /v1/orders without a token answered $code, want 401"
echo "smoke: ok  no token -> 401"

card=${SMOKE_CARD_TOKEN:-tok_approve}
body=${SMOKE_ORDER_BODY:-'{"lines":[{"sku":"SMOKE-1","quantity":1,"unit_price":{"amount":1000,"currency":"EUR"}}],"card_token":"'"$card"'"}'}
key=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(status -X POST "$api/v1/orders" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -H "idempotency-key: $key" -d "$body")
[ "$code" = 201 ] || fail "POST /v1/orders answered $code, want 201: $(head -c 500 "$body_file")"
id=$(field id)
total=$(field total)
[ -n "$id" ] || fail "POST /v1/orders answered no order id: $(head -c 500 "$body_file")"
echo "smoke: ok  POST /v1/orders -> 201 (order $id, total $total)"

deadline=$(( $(date +%s) + timeout ))
while :; do
  code=$(status "$api/v1/orders/$id" -H "authorization: Bearer $token")
  [ "$code" = 200 ] || fail "GET /v1/orders/$id answered $code: $(head -c 500 "$body_file")"
  state=$(field status)
  case "$state" in CONFIRMED|CANCELLED) break ;; esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "order $id still $state after ${timeout}s"
  sleep 2
done
[ "$state" = "$expect" ] || \
  fail "order $id ended $state, want $expect: $(head -c 500 "$body_file")"
echo "smoke: ok  saga moved order $id to $state"

# A confirmed order's payment is captured once payments sees OrderConfirmed: wait for it.
while :; do
  code=$(status "$api/v1/payments/$id" -H "authorization: Bearer $token")
  [ "$code" = 200 ] || fail "GET /v1/payments/$id answered $code: $(head -c 500 "$body_file")"
  payment=$(field status)
  [ "$payment" = "$payment_expect" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || \
    fail "payment of order $id is $payment, want $payment_expect: $(head -c 500 "$body_file")"
  sleep 1
done
[ "$(field amount)" = "$total" ] || \
  fail "payment of order $id is for $(field amount), the order's total is $total"
echo "smoke: ok  GET /v1/payments/$id -> $payment for $total"
