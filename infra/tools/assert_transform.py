#!/usr/bin/env python3
"""Asserts what the transformed template must contain for deployments to be safe.

For each function of the contract: an alias `live`, a CodeDeploy deployment group and a role of
its own; for orders-http: provisioned concurrency on the alias and an auto-scaling target on it.

    .venv/bin/python infra/tools/assert_transform.py .local/infra/template.cfn.json
"""

import json
import sys

CONTRACT_FUNCTIONS = [f"{s}-{k}" for s in ("orders", "payments", "notify") for k in ("http", "events", "relay")]


def logical_id(binary: str) -> str:
    return "".join(part.capitalize() for part in binary.split("-")) + "Function"


def main() -> int:
    resources = json.load(open(sys.argv[1]))["Resources"]
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

    for p in problems:
        print(f"  {p}")
    print(f"transform assertions: {len(CONTRACT_FUNCTIONS)} functions, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
