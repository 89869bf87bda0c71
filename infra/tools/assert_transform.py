#!/usr/bin/env python3
"""Asserts what the transformed template must contain for deployments to be safe.

For each function of the contract: an alias `live`, a CodeDeploy deployment group and a role of
its own, and a failure alarm in that group that watches the function's own failure metric
(5xx responses, failed messages, events not published) for the version being deployed; for
orders-http: provisioned concurrency on the alias and an auto-scaling target on it. Every route
of the HTTP API requires the customer scope (`${AppName}/orders`). The template's rules refuse
an external JWT issuer without an audience.

    .venv/bin/python infra/tools/assert_transform.py .local/infra/template.cfn.json
"""

import json
import sys

CONTRACT_FUNCTIONS = [f"{s}-{k}" for s in ("orders", "payments", "notify") for k in ("http", "events", "relay")]
# The EMF namespace of shared/kit/src/metrics.rs and the metric each kind of function emits
# per function version when it fails without failing its invocation.
METRICS_NAMESPACE = "ServerlessRustShop"
CUSTOMER_SCOPE = {"Fn::Sub": "${AppName}/orders"}
FAILURE_METRIC = {"http": "Responses5xx", "events": "MessagesFailed", "relay": "EventsNotPublished"}


def logical_id(binary: str) -> str:
    return "".join(part.capitalize() for part in binary.split("-")) + "Function"


def alarm_names(group: dict) -> list:
    """The alarm names of a deployment group's AlarmConfiguration (as written: Ref or string)."""
    config = group.get("Properties", {}).get("AlarmConfiguration", {})
    if not config.get("Enabled"):
        return []
    return [a.get("Name") for a in config.get("Alarms", [])]


def failure_alarm_problems(resources: dict, binary: str, fid: str, group: dict) -> list:
    """The deployment group lists an alarm on the function's failure metric, and that alarm
    watches the version the deployment publishes (not `live`, which mixes old and new)."""
    metric = FAILURE_METRIC[binary.rsplit("-", 1)[1]]
    watching = []
    for name in alarm_names(group):
        alarm_id = name.get("Ref") if isinstance(name, dict) else None
        alarm = resources.get(alarm_id, {})
        props = alarm.get("Properties", {})
        if alarm.get("Type") == "AWS::CloudWatch::Alarm" and props.get("Namespace") == METRICS_NAMESPACE \
                and props.get("MetricName") == metric:
            watching.append((alarm_id, props))
    if not watching:
        return [f"deployment group has no alarm on {METRICS_NAMESPACE}/{metric}"]
    problems = []
    for alarm_id, props in watching:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        if set(dims) != {"function", "version"}:
            problems.append(f"{alarm_id}: dimensions {sorted(dims)} are not the per-version set [function, version]")
            continue
        if f"-{binary}" not in json.dumps(dims["function"]):
            problems.append(f"{alarm_id}: dimension function is not {binary}: {dims['function']}")
        if not watches_new_version(dims["version"], fid, resources):
            problems.append(f"{alarm_id}: dimension version is not the version being deployed: {dims['version']}")
        if props.get("TreatMissingData") != "notBreaching":
            problems.append(f"{alarm_id}: a version without traffic must not be in alarm (TreatMissingData)")
    return problems


def watches_new_version(value, fid: str, resources: dict) -> bool:
    """`value` is `Fn::Select [7, Fn::Split [":", Ref <the function's AWS::Lambda::Version>]]`:
    the version number out of the version ARN `arn:aws:lambda:region:account:function:name:N`."""
    select = value.get("Fn::Select") if isinstance(value, dict) else None
    if not (isinstance(select, list) and len(select) == 2 and str(select[0]) == "7"):
        return False
    split = select[1].get("Fn::Split") if isinstance(select[1], dict) else None
    if not (isinstance(split, list) and len(split) == 2 and split[0] == ":" and isinstance(split[1], dict)):
        return False
    version_id = split[1].get("Ref")
    version = resources.get(version_id, {})
    return version.get("Type") == "AWS::Lambda::Version" and \
        version.get("Properties", {}).get("FunctionName") == {"Ref": fid}


def route_scope_problems(resources: dict) -> list:
    """Every operation of the HTTP API's OpenAPI body needs the JWT authorizer with the
    customer scope, so ID tokens and tokens without the scope get 403."""
    body = resources.get("HttpApi", {}).get("Properties", {}).get("Body", {})
    problems = []
    operations = [(path, method, op) for path, ops in body.get("paths", {}).items()
                  for method, op in ops.items() if method != "options"]
    if not operations:
        return ["HttpApi: no routes in the transformed API body"]
    for path, method, op in operations:
        scopes = [s for req in op.get("security", []) for s in req.get("JwtAuthorizer", [])]
        if CUSTOMER_SCOPE not in scopes:
            problems.append(f"route {method.upper()} {path}: does not require the customer scope ({scopes})")
    return problems


def evaluate(expr, params: dict):
    """The value of a rule expression (Ref to a parameter and the condition functions)."""
    if not isinstance(expr, dict):
        return expr
    (fn, arg), = expr.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Equals":
        return evaluate(arg[0], params) == evaluate(arg[1], params)
    if fn == "Fn::Not":
        return not evaluate(arg[0], params)
    if fn == "Fn::And":
        return all(evaluate(a, params) for a in arg)
    if fn == "Fn::Or":
        return any(evaluate(a, params) for a in arg)
    raise ValueError(f"unsupported rule function {fn}")


def rules_accept(template: dict, overrides: dict) -> bool:
    """Whether CloudFormation would accept the parameters: every rule whose condition holds
    has all its assertions true."""
    params = {k: v.get("Default", "") for k, v in template.get("Parameters", {}).items()}
    params.update(overrides)
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        if not all(evaluate(a["Assert"], params) for a in rule.get("Assertions", [])):
            return False
    return True


def rule_problems(template: dict) -> list:
    issuer = "https://issuer.example.com/"
    cases = [
        ({}, True, "the defaults (Cognito)"),
        ({"JwtIssuer": issuer, "JwtAudience": "client-1"}, True, "an external issuer with an audience"),
        ({"JwtIssuer": issuer}, False, "an external issuer without an audience"),
    ]
    return [f"rules: {what} {'refused' if expected else 'accepted'}"
            for overrides, expected, what in cases if rules_accept(template, overrides) != expected]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def relay_source_problems(resources: dict) -> list:
    """A relay may put only events of its own service's source (`events:source` condition on
    every statement that allows `events:PutEvents`), so a compromised relay cannot forge
    another service's events."""
    problems = []
    for service in ("orders", "payments", "notify"):
        fid = logical_id(f"{service}-relay")
        role_id = resources.get(fid, {}).get("Properties", {}).get("Role", {}).get("Fn::GetAtt", [None])[0]
        role = resources.get(role_id, {})
        statements = [st for policy in role.get("Properties", {}).get("Policies", [])
                      for st in as_list(policy.get("PolicyDocument", {}).get("Statement", []))]
        puts = [st for st in statements if "events:PutEvents" in as_list(st.get("Action", []))]
        if not puts:
            problems.append(f"{service}-relay: no statement allows events:PutEvents")
        for st in puts:
            source = st.get("Condition", {}).get("StringEquals", {}).get("events:source")
            if source != f"shop.{service}":
                problems.append(f"{service}-relay: events:PutEvents without events:source = shop.{service} ({source!r})")
    return problems


def main() -> int:
    template = json.load(open(sys.argv[1]))
    resources = template["Resources"]
    problems = []
    roles_seen = {}
    for binary in CONTRACT_FUNCTIONS:
        fid = logical_id(binary)
        fn = resources.get(fid)
        if not fn or fn["Type"] != "AWS::Lambda::Function":
            problems.append(f"{binary}: no AWS::Lambda::Function {fid}")
            continue
        alias = resources.get(f"{fid}Aliaslive", {})
        if alias.get("Type") != "AWS::Lambda::Alias" or alias["Properties"].get("Name") != "live":
            problems.append(f"{binary}: no alias 'live'")
        group = resources.get(f"{fid}DeploymentGroup", {})
        if group.get("Type") != "AWS::CodeDeploy::DeploymentGroup":
            problems.append(f"{binary}: no CodeDeploy deployment group")
        if "CodeDeployLambdaAliasUpdate" not in alias.get("UpdatePolicy", {}):
            problems.append(f"{binary}: alias not updated through CodeDeploy")
        problems.extend(f"{binary}: {p}" for p in failure_alarm_problems(resources, binary, fid, group))
        role = fn["Properties"].get("Role", {}).get("Fn::GetAtt", [None])[0]
        if role is None or resources.get(role, {}).get("Type") != "AWS::IAM::Role":
            problems.append(f"{binary}: no role of its own")
        elif role in roles_seen:
            problems.append(f"{binary}: shares role {role} with {roles_seen[role]}")
        else:
            roles_seen[role] = binary

    alias = resources.get("OrdersHttpFunctionAliaslive", {})
    if "ProvisionedConcurrencyConfig" not in alias.get("Properties", {}):
        problems.append("orders-http: alias has no ProvisionedConcurrencyConfig")
    targets = [r for r in resources.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
               and "OrdersHttpFunction" in json.dumps(r["Properties"].get("ResourceId"))
               and r["Properties"].get("ScalableDimension") == "lambda:function:ProvisionedConcurrency"]
    if not targets:
        problems.append("orders-http: no ScalableTarget on its provisioned concurrency")
    policies = [r for r in resources.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
                and "LambdaProvisionedConcurrencyUtilization" in json.dumps(r["Properties"])]
    if not policies:
        problems.append("orders-http: no target-tracking policy on provisioned concurrency utilization")

    problems.extend(route_scope_problems(resources))
    problems.extend(rule_problems(template))
    problems.extend(relay_source_problems(resources))

    for p in problems:
        print(f"  {p}")
    print(f"transform assertions: {len(CONTRACT_FUNCTIONS)} functions, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
