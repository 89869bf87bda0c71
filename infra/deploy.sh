#!/usr/bin/env bash
# Builds and deploys the stacks of one stage with SAM: the platform (infra/platform.yaml, stack
# <AppName>-<Stage>) first, then each service (services/<name>/template.yaml, stack
# <AppName>-<Stage>-<name>), each on its own: a service stack needs only the platform's exports.
#
#   infra/deploy.sh build  STAGE [STACK...]   sam build into .aws-sam/<stack>/
#   infra/deploy.sh deploy STAGE [STACK...]   sam deploy what build left there
#   infra/deploy.sh all    STAGE [STACK...]   both (make deploy STAGE=dev [STACKS="orders"])
#   infra/deploy.sh stack-name STAGE STACK   the CloudFormation stack name of STACK
#
# DRY_RUN=1 prints the sam commands instead of running them (tools/testing/tests/test_changed_stacks.py).
#
# STACK is `platform` or a service folder name; none = the platform and every service found.
# Settings come from infra/samconfig.toml's [STAGE.*] tables, shared by every stack: SAM passes a
# stack only the parameter_overrides its template declares. docs/deploy.md has the details.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 stage=$2
shift 2
case "$action" in build | deploy | all | stack-name) ;; *) usage ;; esac
config="$root/infra/samconfig.toml"
grep -q "^\[$stage\.deploy\.parameters\]" "$config" || { echo "deploy: no [$stage.deploy.parameters] in $config" >&2; exit 2; }

if [ $# -gt 0 ]; then
  stacks=("$@")
else
  read -r -a stacks <<<"$(python3 infra/tools/changed_stacks.py --all)"
fi
# AppName of the stage (its parameter_overrides), for the service stacks' names.
app=$(python3 - "$config" "$stage" <<'PY'
import shlex, sys, tomllib
overrides = tomllib.load(open(sys.argv[1], "rb"))[sys.argv[2]]["deploy"]["parameters"]["parameter_overrides"]
print(dict(w.split("=", 1) for w in shlex.split(overrides)).get("AppName", "shop"))
PY
)

# run CMD...: prints CMD, and runs it unless DRY_RUN=1.
run() {
  echo "+ $*"
  [ "${DRY_RUN:-0}" = 1 ] || "$@"
}

template_of() {
  if [ "$1" = platform ]; then echo infra/platform.yaml; else echo "services/$1/template.yaml"; fi
}
stack_name_of() {
  if [ "$1" = platform ]; then echo "$app-$stage"; else echo "$app-$stage-$1"; fi
}

if [ "$action" = stack-name ]; then
  [ ${#stacks[@]} -eq 1 ] || usage
  stack_name_of "${stacks[0]}"
  exit 0
fi

# The platform deploys before any service (its exports must exist first).
ordered=()
for s in "${stacks[@]}"; do [ "$s" = platform ] && ordered+=(platform); done
for s in "${stacks[@]}"; do [ "$s" = platform ] || ordered+=("$s"); done

for s in "${ordered[@]}"; do
  template=$(template_of "$s")
  [ -f "$template" ] || { echo "deploy: no stack $s ($template)" >&2; exit 2; }
  build_dir="$root/.aws-sam/$s"
  if [ "$action" != deploy ]; then
    echo "deploy: sam build $template -> .aws-sam/$s"
    run sam build --config-file "$config" --config-env "$stage" \
      --template-file "$template" --build-dir "$build_dir" --cache-dir "$root/.aws-sam/cache/$s"
  fi
  if [ "$action" != build ]; then
    name=$(stack_name_of "$s")
    echo "deploy: sam deploy $name"
    run sam deploy --config-file "$config" --config-env "$stage" \
      --template-file "$build_dir/template.yaml" --stack-name "$name" --s3-prefix "$name"
  fi
done
