#!/usr/bin/env python3
"""Compares the one template the stacks replaced with the union of the platform and service stacks.

Transforms the old single template (by default `git show a5bd8f6:infra/template.yaml`, the last
commit that had it) and the union of today's stacks (infra/tools/stacks.py: modules expanded,
imports resolved), both offline with the same parameters, and prints what differs in:

- resources, by type and logical id (SAM's hashed version ids compared without the hash),
- alarms, by AlarmName, and for an alarm both have, the properties that differ,
- routes of the HTTP API and the scopes each requires,
- IAM actions (and resources) each function's role allows, and who may invoke each function.

It exits 0 whatever it finds: the differences are for a reader (docs/adr/0009 lists them and why).

    .venv/bin/python infra/tools/compare_stacks.py [--old-rev a5bd8f6] [--old-template path]
    .venv/bin/python infra/tools/compare_stacks.py --old-union-rev main   # the stacks of a commit

With --old-union-rev, the old side is the union of that commit's own stacks, made by that
commit's own infra/tools/stacks.py (its infra/ and services/ extracted with git archive).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402

PARAMS = {"CorsAllowOrigin": "https://localhost:3000", "CallbackUrls": "https://localhost:3000"}
VERSION_HASH = re.compile(r"(Version)[0-9a-f]{10}$")


def canonical_id(rid: str) -> str:
    return VERSION_HASH.sub(r"\1", rid)


def resources(cfn: dict) -> dict:
    return {canonical_id(rid): r for rid, r in cfn.get("Resources", {}).items()}


def text(value) -> str:
    """A readable form of a (Sub) string."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return json.dumps(value, sort_keys=True)


def canonical(node):
    """A property value with hashed version ids unhashed, for comparing old and new."""
    return json.loads(VERSION_HASH.sub(r"\1", json.dumps(node, sort_keys=True)).replace('Version"', 'Version"'))


def _unhash(node):
    """Hashed version ids unhashed, and a Sub with nothing left to substitute read as its text."""
    if isinstance(node, list):
        return [_unhash(x) for x in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str) and "${" not in node["Fn::Sub"]:
            return node["Fn::Sub"]
        return {k: _unhash(v) for k, v in node.items()}
    return canonical_id(node) if isinstance(node, str) else node


def alarms(res: dict) -> dict:
    return {text(r["Properties"].get("AlarmName")): (rid, _unhash(r["Properties"]))
            for rid, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def routes(res: dict) -> dict:
    out = {}
    for r in res.values():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::ApiGatewayV2::Route":
            out[props["RouteKey"]] = sorted(text(s) for s in props.get("AuthorizationScopes", []))
        if r["Type"] == "AWS::ApiGatewayV2::Api":
            for path, ops in props.get("Body", {}).get("paths", {}).items():
                for method, op in ops.items():
                    if method != "options":
                        out[f"{method.upper()} {path}"] = sorted(
                            text(s) for req in op.get("security", []) for s in req.get("JwtAuthorizer", []))
    return out


def role_actions(res: dict) -> dict:
    """Function id -> sorted "action on resource" lines its role's inline policies allow."""
    out = {}
    for fid, fn in res.items():
        if fn["Type"] != "AWS::Lambda::Function":
            continue
        role = res.get(fn["Properties"].get("Role", {}).get("Fn::GetAtt", [""])[0], {})
        lines = set()
        for policy in role.get("Properties", {}).get("Policies", []):
            statements = policy.get("PolicyDocument", {}).get("Statement", [])
            for st in statements if isinstance(statements, list) else [statements]:
                actions = st.get("Action", [])
                for action in actions if isinstance(actions, list) else [actions]:
                    lines.add(f"{action} on {json.dumps(_unhash(st.get('Resource')), sort_keys=True)}")
        managed = role.get("Properties", {}).get("ManagedPolicyArns", [])
        lines.update(f"managed {text(m)}" for m in managed)
        out[fid] = sorted(lines)
    return out


def invokers(res: dict) -> dict:
    """Function id (the alias's function) -> sorted "principal from source" of its permissions."""
    out = {}
    for r in res.values():
        if r["Type"] != "AWS::Lambda::Permission":
            continue
        props = r["Properties"]
        target = props.get("FunctionName", {}).get("Ref", "?").removesuffix("Aliaslive")
        source = props.get("SourceArn")
        out.setdefault(target, []).append(f"{props.get('Principal')} from {text(source)}")
    return {k: sorted(v) for k, v in out.items()}


def section(title: str) -> None:
    print(f"\n## {title}")


def compare(old: dict, new: dict) -> int:
    old_res, new_res = resources(old), resources(new)
    differences = 0

    section("Resources by type (old -> new)")
    old_types = Counter(r["Type"] for r in old_res.values())
    new_types = Counter(r["Type"] for r in new_res.values())
    for t in sorted(set(old_types) | set(new_types)):
        mark = "" if old_types[t] == new_types[t] else "  <-"
        print(f"  {t}: {old_types[t]} -> {new_types[t]}{mark}")
    print(f"  total: {sum(old_types.values())} -> {sum(new_types.values())}")
    section("Resources only in the old template")
    for rid in sorted(set(old_res) - set(new_res)):
        differences += 1
        print(f"  - {rid} ({old_res[rid]['Type']})")
    section("Resources only in the stacks")
    for rid in sorted(set(new_res) - set(old_res)):
        differences += 1
        print(f"  + {rid} ({new_res[rid]['Type']})")
    section("Resources in both whose type changed")
    for rid in sorted(set(old_res) & set(new_res)):
        if old_res[rid]["Type"] != new_res[rid]["Type"]:
            differences += 1
            print(f"  ~ {rid}: {old_res[rid]['Type']} -> {new_res[rid]['Type']}")

    section("Alarms (by AlarmName)")
    old_alarms, new_alarms = alarms(old_res), alarms(new_res)
    print(f"  {len(old_alarms)} -> {len(new_alarms)}")
    for name in sorted(set(old_alarms) - set(new_alarms)):
        differences += 1
        print(f"  - {name} ({old_alarms[name][0]})")
    for name in sorted(set(new_alarms) - set(old_alarms)):
        differences += 1
        print(f"  + {name} ({new_alarms[name][0]})")
    for name in sorted(set(old_alarms) & set(new_alarms)):
        (oid, op), (nid, np) = old_alarms[name], new_alarms[name]
        changed = sorted(k for k in set(op) | set(np) if op.get(k) != np.get(k))
        if changed or oid != nid:
            differences += 1
            print(f"  ~ {name}: {'id ' + oid + ' -> ' + nid + '; ' if oid != nid else ''}{', '.join(changed)}")
            for k in changed:
                print(f"      {k}: {json.dumps(op.get(k))[:160]} -> {json.dumps(np.get(k))[:160]}")

    section("Routes and their scopes")
    old_routes, new_routes = routes(old_res), routes(new_res)
    for key in sorted(set(old_routes) | set(new_routes)):
        same = old_routes.get(key) == new_routes.get(key)
        differences += 0 if same else 1
        print(f"  {'=' if same else '~'} {key}: {old_routes.get(key)} -> {new_routes.get(key)}")

    section("IAM: what each function's role allows")
    old_roles, new_roles = role_actions(old_res), role_actions(new_res)
    for fid in sorted(set(old_roles) | set(new_roles)):
        gone = sorted(set(old_roles.get(fid, [])) - set(new_roles.get(fid, [])))
        added = sorted(set(new_roles.get(fid, [])) - set(old_roles.get(fid, [])))
        if not gone and not added:
            print(f"  = {fid}")
            continue
        differences += 1
        print(f"  ~ {fid}")
        for line in gone:
            print(f"      - {line[:200]}")
        for line in added:
            print(f"      + {line[:200]}")

    section("Who may invoke each function (AWS::Lambda::Permission)")
    old_inv, new_inv = invokers(old_res), invokers(new_res)
    for fid in sorted(set(old_inv) | set(new_inv)):
        same = old_inv.get(fid) == new_inv.get(fid)
        differences += 0 if same else 1
        print(f"  {'=' if same else '~'} {fid}")
        if not same:
            for line in old_inv.get(fid, []):
                print(f"      - {line}")
            for line in new_inv.get(fid, []):
                print(f"      + {line}")
    section("Other properties of the resources both have (not alarms, routes or roles)")
    for rid in sorted(set(old_res) & set(new_res)):
        o, n = old_res[rid], new_res[rid]
        if o["Type"] in ("AWS::CloudWatch::Alarm", "AWS::ApiGatewayV2::Route", "AWS::IAM::Role"):
            continue
        op, np = _unhash(o), _unhash(n)
        changed = sorted(k for k in set(op.get("Properties", {})) | set(np.get("Properties", {}))
                         if op.get("Properties", {}).get(k) != np.get("Properties", {}).get(k))
        changed += sorted(k for k in (set(op) | set(np)) - {"Properties", "Type"} if op.get(k) != np.get(k))
        if changed:
            differences += 1
            print(f"  ~ {rid}: {', '.join(changed)}")
            for k in changed:
                before = op.get("Properties", {}).get(k, op.get(k))
                after = np.get("Properties", {}).get(k, np.get(k))
                print(f"      {k}: {json.dumps(before, sort_keys=True)[:200]} -> {json.dumps(after, sort_keys=True)[:200]}")
    print(f"\n{differences} difference(s)")
    return differences


def old_union(rev: str) -> dict:
    """The union of the stacks of commit `rev`, by that commit's own stacks.py."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev, "infra", "services"], cwd=stacks.ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = Path(tmp) / "union.json"
        params = [f"--param={k}={v}" for k, v in PARAMS.items()]
        subprocess.run([sys.executable, str(Path(tmp) / "infra/tools/stacks.py"), "union", str(out), *params],
                       check=True, capture_output=True)
        return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="a5bd8f6")
    parser.add_argument("--old-template", type=Path, help="the old template as a file (instead of --old-rev)")
    parser.add_argument("--old-union-rev", help="compare with the union of this commit's stacks (instead of --old-rev)")
    args = parser.parse_args()
    if args.old_union_rev:
        compare(old_union(args.old_union_rev), stacks.union(PARAMS))
        return 0
    if args.old_template:
        old_path = args.old_template
    else:
        shown = subprocess.run(["git", "show", f"{args.old_rev}:infra/template.yaml"], cwd=stacks.ROOT,
                               capture_output=True, text=True, check=True).stdout
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        tmp.write(shown)
        tmp.close()
        old_path = Path(tmp.name)
    old = stacks.transform_stack(old_path, PARAMS)
    new = stacks.union(PARAMS)
    compare(old, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
