#!/usr/bin/env bash
# End-to-end smoke test of a deployed stack: the API rejects a request without a token, accepts
# an order with one, and the saga moves it out of PENDING (orders -> payments -> orders).
#
#   STACK_NAME=shop-staging bash infra/smoke.sh
#
# Env: STACK_NAME (read outputs with the AWS CLI) or API_URL; a token from STAGING_TOKEN, else
# the stack's Cognito client-credentials client (SmokeClientId/TokenUrl outputs; the secret is
# read with cognito-idp describe-user-pool-client). SMOKE_ORDER_BODY overrides the order JSON;
# SMOKE_TIMEOUT (s, default 90) bounds the wait for the saga.
set -euo pipefail

output() {
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

api=${API_URL:-$(output ApiUrl)}
api=${api%/}
token=${STAGING_TOKEN:-}
if [ -z "$token" ]; then
  pool=$(output UserPoolId)
  client=$(output SmokeClientId)
  token_url=$(output TokenUrl)
  secret=$(aws cognito-idp describe-user-pool-client --user-pool-id "$pool" --client-id "$client" \
    --query UserPoolClient.ClientSecret --output text)
  app=${STACK_NAME%%-*}
  token=$(curl -fsS -u "$client:$secret" -d grant_type=client_credentials -d "scope=$app/orders" \
    "$token_url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
fi

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
status() { curl -s -o /tmp/smoke.body -w '%{http_code}' "$@"; }

code=$(status "$api/v1/orders")
[ "$code" = 401 ] || fail "GET /v1/orders without a token answered $code, want 401"
echo "smoke: ok  no token -> 401"

body=${SMOKE_ORDER_BODY:-'{"items":[{"sku":"SMOKE-1","quantity":1,"unit_price":{"amount":1000,"currency":"EUR"}}],"payment":{"card_token":"tok_visa_success"}}'}
key=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(status -X POST "$api/v1/orders" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -H "idempotency-key: $key" -d "$body")
case "$code" in 200|201|202) ;; *) fail "POST /v1/orders answered $code: $(cat /tmp/smoke.body)";; esac
id=$(python3 -c 'import json; d=json.load(open("/tmp/smoke.body")); print(d.get("id") or d["order"]["id"])')
echo "smoke: ok  POST /v1/orders -> $code (order $id)"

deadline=$(( $(date +%s) + ${SMOKE_TIMEOUT:-90} ))
while :; do
  code=$(status "$api/v1/orders/$id" -H "authorization: Bearer $token")
  [ "$code" = 200 ] || fail "GET /v1/orders/$id answered $code"
  state=$(python3 -c 'import json; d=json.load(open("/tmp/smoke.body")); print(d.get("status") or d["order"]["status"])')
  [ "$state" != PENDING ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "order $id still PENDING after ${SMOKE_TIMEOUT:-90}s"
  sleep 3
done
echo "smoke: ok  saga moved order $id to $state"
