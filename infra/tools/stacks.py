#!/usr/bin/env python3
"""The stacks of the app, found rather than listed, and their union as one template.

The platform is infra/platform.yaml; every services/<name>/template.yaml is a service stack; the
modules under infra/modules/ are used by both through `AWS::Serverless::Application` (nested
stacks, `Location` a local path that `sam package` uploads). This module:

- finds them (`platform()`, `services()`, `modules()`),
- transforms one stack offline (`transform_stack`, SAM -> CloudFormation, as infra/tools/transform.py),
- expands its modules in place (`expand_modules`): each nested stack's resources join the parent as
  `<Instance><Resource>` (the module instance `OrdersHttp` with its `ErrorsAlarm` gives
  `OrdersHttpErrorsAlarm`), its parameters and conditions resolved, `!GetAtt <Instance>.Outputs.X`
  replaced by what the output is; a module parameter the parent does not pass stays a `Ref` and
  joins the parent's parameters with its default (the module's own setting, e.g. the service
  module's `QueueAgeThresholdSeconds`: one default for every service; its conditions are evaluated
  with that default, as a deployment does), a module condition on what only a deployment knows
  (`IsProd`, on the `Stage`) joins the parent's conditions, `${<Instance>.Outputs.X}` of a `Sub`
  is rewritten too, and a `Sub` left with nothing to substitute becomes its text,
- and joins the platform and the services into one template (`union`), every
  `Fn::ImportValue` of a platform export `<AppName>-<Stage>-<Output>` replaced by that output's
  value (`{"Ref": "AlarmTopic"}`), so the union reads like the one template the stacks replaced.

infra/tools/assert_transform.py, infra/tools/compare_stacks.py, infra/tools/check-runbooks.py and
infra/check.sh use it. As a command, it writes the union:

    .venv/bin/python infra/tools/stacks.py union .local/infra/union.cfn.json [--param Stage=prod ...]
    .venv/bin/python infra/tools/stacks.py list     # one template path a line: platform, services, modules
    .venv/bin/python infra/tools/stacks.py cycles infra/platform.yaml services/*/template.yaml  # no circular dependency
"""

import argparse
import copy
import json
import logging
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVERLESS_WITH_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
SUB_TOKEN = re.compile(r"\$\{([^}!][^}]*)\}")


def platform(root: Path = ROOT) -> Path:
    return root / "infra" / "platform.yaml"


def services(root: Path = ROOT) -> list:
    """Every service stack: services/<name>/template.yaml, in name order."""
    return sorted(root.glob("services/*/template.yaml"))


def modules(root: Path = ROOT) -> list:
    return sorted((root / "infra" / "modules").glob("*.yaml"))


def stack_name(path: Path, root: Path = ROOT) -> str:
    """platform, a service's folder name, or module/<name>."""
    path = path.resolve()
    if path == platform(root).resolve():
        return "platform"
    if path.parent.parent == (root / "services").resolve():
        return path.parent.name
    return f"module/{path.stem}"


class OfflineManagedPolicyLoader:
    """The templates name managed policies by ARN only, so there is nothing to look up."""

    def load(self) -> dict:
        return {}


def placeholder_code_uris(template: dict) -> None:
    """Rewrite local code paths (e.g. . or ../tools/deployed/deploy-smoke) to s3:// placeholders, the
    functions' and the one of `Globals.Function`."""
    function_globals = template.get("Globals", {}).get("Function", {})
    uri = function_globals.get("CodeUri")
    if isinstance(uri, str) and not uri.startswith("s3://"):
        function_globals["CodeUri"] = f"s3://offline-artifacts/{uri.strip('./').replace('/', '-') or 'globals'}.zip"
    for logical_id, resource in template.get("Resources", {}).items():
        prop = SERVERLESS_WITH_CODE.get(resource.get("Type"))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            name = props[prop].strip("./").replace("/", "-") or logical_id
            props[prop] = f"s3://offline-artifacts/{name}.zip"


def load(path: Path) -> dict:
    return yaml_parse(Path(path).read_text())


def transform_stack(path: Path, params: dict | None = None) -> dict:
    """The stack as CloudFormation: SAM-transformed when it declares the SAM transform, as written
    otherwise (a module). Nested stacks keep their local TemplateURL (see expand_modules)."""
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    template = load(path)
    if "AWS::Serverless-2016-10-31" not in json.dumps(template.get("Transform", "")):
        return template
    placeholder_code_uris(template)
    known = template.get("Parameters", {})
    return transform(template, {k: v for k, v in (params or {}).items() if k in known}, OfflineManagedPolicyLoader())


# --- module expansion ---------------------------------------------------------------------------

class Unresolved(Exception):
    """A module's condition or mapping key depends on something only a deployment knows."""


def _literal(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or (
        isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value))


def _condition(expr, params: dict, conditions: dict):
    """Evaluates a module condition over literal parameter values."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Fn::Equals":
            a, b = (_value(x, params) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not _condition(arg[0], params, conditions)
        if fn == "Fn::And":
            return all(_condition(x, params, conditions) for x in arg)
        if fn == "Fn::Or":
            return any(_condition(x, params, conditions) for x in arg)
        if fn == "Condition":
            return _condition(conditions[arg], params, conditions)
    raise Unresolved(f"condition {expr!r}")


def _value(expr, params: dict):
    if isinstance(expr, dict) and set(expr) == {"Ref"} and expr["Ref"] in params:
        value = params[expr["Ref"]]
        if _literal(value):
            return value
        raise Unresolved(f"{expr['Ref']} = {value!r} is not a literal")
    if _literal(expr):
        return expr
    raise Unresolved(f"value {expr!r}")


NO_VALUE = {"Ref": "AWS::NoValue"}


class _Inliner:
    """Rewrites one module's template into its parent's terms."""

    def __init__(self, instance: str, module: dict, given: dict):
        self.instance = instance
        self.module = module
        self.params = {}
        # The module's own settings (parameters with a default the parent does not pass).
        self.declared = {}
        for name, decl in module.get("Parameters", {}).items():
            value = given.get(name)
            if value is None and "Default" in decl:
                self.declared[name] = decl
                value = {"Ref": name}
            if value is None:
                raise Unresolved(f"{instance}: module parameter {name} has no value")
            if decl.get("Type") == "CommaDelimitedList":
                if isinstance(value, str):
                    value = value.split(",")
                elif isinstance(value, dict) and "Fn::Join" in value and value["Fn::Join"][0] == ",":
                    value = value["Fn::Join"][1]
                elif isinstance(value, dict) and set(value) <= {"Ref", "Fn::GetAtt"}:
                    value = [value]  # one name: the list of it
            self.params[name] = value
        raw = module.get("Conditions", {})
        # A parameter the parent does not pass has the module's default in a deployment too.
        literal = {k: (self.declared[k]["Default"] if k in self.declared else v) for k, v in self.params.items()}
        self.conditions = {}
        # Conditions on what only a deployment knows (IsProd: the Stage): the parent's, rewritten.
        self.lifted = {}
        for name, expr in raw.items():
            try:
                self.conditions[name] = _condition(expr, literal, raw)
            except Unresolved:
                self.lifted[name] = None
        self.resources = {rid for rid, r in module.get("Resources", {}).items()
                          if r.get("Condition") in self.lifted or self.conditions.get(r.get("Condition"), True)}
        self.lifted = {name: self.rewrite(raw[name]) for name in self.lifted}

    def name(self, rid: str) -> str:
        return self.instance + rid

    def sub_text(self, text: str, variables: dict) -> str:
        def token(match):
            ref = match.group(1)
            head, _, attr = ref.partition(".")
            if ref in variables or head.startswith("AWS::"):
                return match.group(0)
            if head in self.resources:
                return "${" + self.name(head) + ("." + attr if attr else "") + "}"
            if ref in self.params:
                value = self.params[ref]
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    return str(value)
                if isinstance(value, dict) and set(value) == {"Ref"}:
                    return "${" + value["Ref"] + "}"
                if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
                    return "${" + ".".join(value["Fn::GetAtt"]) + "}"
                variables[ref] = value
                return match.group(0)
            raise Unresolved(f"{self.instance}: ${{{ref}}} names nothing of the module")
        return SUB_TOKEN.sub(token, text)

    def rewrite(self, node):
        if isinstance(node, list):
            return [y for y in (self.rewrite(x) for x in node) if y != NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                if arg in self.params:
                    return copy.deepcopy(self.params[arg])
                if arg in self.resources:
                    return {"Ref": self.name(arg)}
                return node
            if fn == "Fn::GetAtt":
                return {"Fn::GetAtt": [self.name(arg[0]), *arg[1:]]} if arg[0] in self.resources else node
            if fn == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]))
                variables = {k: self.rewrite(v) for k, v in variables.items()}
                for k in [k for k, v in variables.items() if isinstance(v, (str, int, float))]:
                    text = text.replace("${" + k + "}", str(variables.pop(k)))
                text = self.sub_text(text, variables)
                if not variables and "${" not in text:
                    return text  # nothing left to substitute: the text itself
                return {"Fn::Sub": [text, variables] if variables else text}
            if fn == "Fn::If":
                if arg[0] in self.lifted:
                    return {"Fn::If": [arg[0], self.rewrite(arg[1]), self.rewrite(arg[2])]}
                return self.rewrite(arg[1] if self.conditions[arg[0]] else arg[2])
            if fn == "Fn::FindInMap":
                keys = [self.rewrite(k) for k in arg]
                if all(isinstance(k, str) for k in keys) and keys[0] in self.module.get("Mappings", {}):
                    return self.module["Mappings"][keys[0]][keys[1]][keys[2]]
                return {"Fn::FindInMap": keys}
        return {k: y for k, y in ((k, self.rewrite(v)) for k, v in node.items()) if y != NO_VALUE}

    def resources_out(self) -> dict:
        out = {}
        for rid, resource in self.module.get("Resources", {}).items():
            if rid not in self.resources:
                continue
            resource = {k: v for k, v in resource.items() if k != "Condition" or v in self.lifted}
            if "DependsOn" in resource:
                deps = resource["DependsOn"] if isinstance(resource["DependsOn"], list) else [resource["DependsOn"]]
                resource["DependsOn"] = [self.name(d) for d in deps]
            out[self.name(rid)] = self.rewrite(resource)
        return out

    def outputs_out(self) -> dict:
        return {name: self.rewrite(o["Value"]) for name, o in self.module.get("Outputs", {}).items()
                if self.conditions.get(o.get("Condition"), True)}


def _replace_outputs(node, outputs: dict):
    """`!GetAtt <Instance>.Outputs.X` (transformed: ["<Instance>", "Outputs.X"]) -> the output's value."""
    if isinstance(node, list):
        return [_replace_outputs(x, outputs) for x in node]
    if not isinstance(node, dict):
        return node
    getatt = node.get("Fn::GetAtt") if len(node) == 1 else None
    if isinstance(getatt, list):
        key = (getatt[0], getatt[1] if len(getatt) == 2 else ".".join(getatt[1:]))
        if key in outputs:
            return copy.deepcopy(outputs[key])
    sub = node.get("Fn::Sub") if len(node) == 1 else None
    if sub is not None:
        text, variables = (sub, None) if isinstance(sub, str) else (sub[0], sub[1])

        def token(match):
            value = outputs.get((match.group(1), f"Outputs.{match.group(2)}"))
            if isinstance(value, dict) and set(value) == {"Ref"}:
                return "${" + value["Ref"] + "}"
            if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
                return "${" + ".".join(value["Fn::GetAtt"]) + "}"
            return match.group(0)
        text = re.sub(r"\$\{([A-Za-z0-9]+)\.Outputs\.([A-Za-z0-9]+)\}", token, text)
        return {"Fn::Sub": text if variables is None else [text, _replace_outputs(variables, outputs)]}
    if isinstance(getatt, str) and ".Outputs." in getatt:
        instance, _, out = getatt.partition(".Outputs.")
        if (instance, f"Outputs.{out}") in outputs:
            return copy.deepcopy(outputs[(instance, f"Outputs.{out}")])
    return {k: _replace_outputs(v, outputs) for k, v in node.items()}


def nested_stacks(cfn: dict) -> dict:
    """The nested stacks of a transformed template whose TemplateURL is a local module path."""
    return {rid: r for rid, r in cfn.get("Resources", {}).items()
            if r.get("Type") == "AWS::CloudFormation::Stack"
            and isinstance(r.get("Properties", {}).get("TemplateURL"), str)
            and not r["Properties"]["TemplateURL"].startswith(("s3://", "https://"))}


def expand_modules(cfn: dict, base: Path) -> dict:
    """The template with every local nested stack replaced by the module's resources."""
    cfn = copy.deepcopy(cfn)
    while True:
        stacks = nested_stacks(cfn)
        if not stacks:
            return cfn
        outputs = {}
        for rid, stack in stacks.items():
            props = stack["Properties"]
            module_path = (base / props["TemplateURL"]).resolve()
            module = transform_stack(module_path) if module_path.exists() else None
            if module is None:
                raise Unresolved(f"{rid}: no module {module_path}")
            inliner = _Inliner(rid, module, props.get("Parameters", {}))
            del cfn["Resources"][rid]
            for new_id, resource in inliner.resources_out().items():
                if new_id in cfn["Resources"]:
                    raise Unresolved(f"{rid}: the module's {new_id} is already a resource of the parent")
                cfn["Resources"][new_id] = resource
            outputs.update({(rid, f"Outputs.{name}"): value for name, value in inliner.outputs_out().items()})
            for name, expr in inliner.lifted.items():
                have = cfn.setdefault("Conditions", {}).get(name)
                if have is not None and have != expr:
                    raise Unresolved(f"{rid}: module condition {name} is another condition of the stack")
                cfn["Conditions"][name] = expr
            for name, decl in inliner.declared.items():
                have = cfn.setdefault("Parameters", {}).get(name)
                if have is not None and have.get("Default") != decl.get("Default"):
                    raise Unresolved(f"{rid}: module parameter {name} defaults to {decl.get('Default')!r}, "
                                     f"the stack's to {have.get('Default')!r}")
                cfn["Parameters"].setdefault(name, decl)
        cfn["Resources"] = _replace_outputs(cfn["Resources"], outputs)
        cfn["Outputs"] = _replace_outputs(cfn.get("Outputs", {}), outputs)


# --- dependencies -------------------------------------------------------------------------------

def dependencies(cfn: dict) -> dict:
    """Resource id -> the ids it depends on (Ref, GetAtt, ${...} of Sub, DependsOn), as
    CloudFormation orders them."""
    ids = set(cfn.get("Resources", {}))

    def found(node, out: set) -> set:
        if isinstance(node, list):
            for x in node:
                found(x, out)
        elif isinstance(node, dict):
            for k, v in node.items():
                if k == "Ref" and v in ids:
                    out.add(v)
                elif k == "Fn::GetAtt":
                    head = v[0] if isinstance(v, list) else str(v).split(".")[0]
                    if head in ids:
                        out.add(head)
                elif k == "Fn::Sub":
                    text = v if isinstance(v, str) else v[0]
                    out.update(t.split(".")[0] for t in SUB_TOKEN.findall(text) if t.split(".")[0] in ids)
                    if not isinstance(v, str):
                        found(v[1], out)
                else:
                    found(v, out)
        return out

    graph = {}
    for rid, resource in cfn.get("Resources", {}).items():
        deps = resource.get("DependsOn", [])
        graph[rid] = found({k: v for k, v in resource.items() if k not in ("Type", "DependsOn")},
                           set(deps if isinstance(deps, list) else [deps]))
    return graph


def cycles(cfn: dict) -> list:
    """Each circular dependency between resources (as a list of ids, first = last), which
    CloudFormation refuses."""
    graph, state, found = dependencies(cfn), {}, []

    def visit(rid: str, path: list) -> None:
        state[rid] = "open"
        for dep in sorted(graph.get(rid, ())):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[rid] = "done"

    for rid in sorted(graph):
        if rid not in state:
            visit(rid, [rid])
    return found


# --- the union of the platform and the services --------------------------------------------------

EXPORT = re.compile(r"^\$\{AppName\}-\$\{Stage\}-([A-Za-z0-9]+)$")


def exports(platform_cfn: dict) -> dict:
    """Output name -> value, for each output the platform exports as <AppName>-<Stage>-<Name>."""
    out = {}
    for name, output in platform_cfn.get("Outputs", {}).items():
        export = output.get("Export", {}).get("Name", {})
        text = export.get("Fn::Sub") if isinstance(export, dict) else None
        match = EXPORT.match(text) if isinstance(text, str) else None
        if match and match.group(1) == name:
            out[name] = output["Value"]
    return out


def imported(node) -> str | None:
    """The export name X of `Fn::ImportValue: !Sub ${AppName}-${Stage}-X`, else None."""
    value = node.get("Fn::ImportValue") if isinstance(node, dict) and len(node) == 1 else None
    text = value.get("Fn::Sub") if isinstance(value, dict) else None
    match = EXPORT.match(text) if isinstance(text, str) else None
    return match.group(1) if match else None


def imports_of(node, found: set | None = None) -> set:
    found = set() if found is None else found
    if isinstance(node, list):
        for x in node:
            imports_of(x, found)
    elif isinstance(node, dict):
        name = imported(node)
        if name:
            found.add(name)
        else:
            for v in node.values():
                imports_of(v, found)
    return found


def resolve_imports(node, values: dict):
    if isinstance(node, list):
        return [resolve_imports(x, values) for x in node]
    if not isinstance(node, dict):
        return node
    name = imported(node)
    if name is not None:
        if name not in values:
            raise Unresolved(f"Fn::ImportValue of {name}, which the platform does not export")
        return copy.deepcopy(values[name])
    return {k: resolve_imports(v, values) for k, v in node.items()}


# What SAM adds once to every stack that has a deployment preference: one CodeDeploy application
# per service stack, renamed <service>ServerlessDeploymentApplication in the union.
PER_STACK = ("ServerlessDeploymentApplication",)


def rename(node, old: str, new: str):
    """Every Ref, GetAtt and ${...} of resource `old` made one of `new`."""
    if isinstance(node, list):
        return [rename(x, old, new) for x in node]
    if not isinstance(node, dict):
        return node
    if node == {"Ref": old}:
        return {"Ref": new}
    out = {}
    for k, v in node.items():
        if k == "Fn::GetAtt" and isinstance(v, list) and v and v[0] == old:
            v = [new, *v[1:]]
        elif k == "Fn::Sub":
            text = v if isinstance(v, str) else v[0]
            text = re.sub(r"\$\{" + re.escape(old) + r"([.}])", "${" + new + r"\1", text)
            v = text if isinstance(v, str) else [text, rename(v[1], old, new)]
        out[k] = rename(v, old, new)
    return out


def expanded(path: Path, params: dict | None = None) -> dict:
    return expand_modules(transform_stack(path, params), path.parent)


def union(params: dict | None = None, root: Path = ROOT) -> dict:
    """The platform and every service stack, modules expanded and imports resolved, as one
    template. Two stacks declaring the same resource id, or the same parameter with different
    defaults, is an error."""
    base = expanded(platform(root), params)
    values = exports(base)
    merged = copy.deepcopy(base)
    for path in services(root):
        stack = resolve_imports(expanded(path, params), values)
        for rid in PER_STACK:
            if rid in stack.get("Resources", {}):
                new = path.parent.name.capitalize() + rid
                stack["Resources"][new] = stack["Resources"].pop(rid)
                stack = rename(stack, rid, new)
        for section in ("Resources", "Conditions", "Rules", "Outputs"):
            for key, value in stack.get(section, {}).items():
                have = merged.setdefault(section, {}).get(key)
                if have is not None and (section == "Resources" or have != value):
                    raise Unresolved(f"{stack_name(path, root)}: {section}.{key} is already the platform's or another service's")
                merged[section][key] = value
        for key, decl in stack.get("Parameters", {}).items():
            have = merged.setdefault("Parameters", {}).get(key)
            if have is not None and have.get("Default") != decl.get("Default"):
                raise Unresolved(f"{stack_name(path, root)}: parameter {key} defaults to {decl.get('Default')!r}, "
                                 f"elsewhere to {have.get('Default')!r}")
            merged["Parameters"].setdefault(key, decl)
        for name, mapping in stack.get("Mappings", {}).items():
            target = merged.setdefault("Mappings", {}).setdefault(name, {})
            for key, entries in mapping.items():
                target.setdefault(key, {}).update(entries)
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    u = sub.add_parser("union", help="write the union of the platform and every service stack")
    u.add_argument("output")
    u.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    e = sub.add_parser("expand", help="write one stack, transformed, with its modules expanded")
    e.add_argument("template")
    e.add_argument("output")
    e.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    sub.add_parser("list", help="print every template: the platform, the services, the modules")
    c = sub.add_parser("cycles", help="fail if a stack, as deployed (nested stacks not expanded), has a circular dependency")
    c.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "cycles":
        bad = 0
        for path in args.templates:
            for cycle in cycles(transform_stack(path)):
                bad += 1
                print(f"FAIL {path}: circular dependency {' -> '.join(cycle)}")
        print(f"cycles: {len(args.templates)} stack(s), {bad} circular dependenc{'y' if bad == 1 else 'ies'}")
        return 1 if bad else 0
    if args.command == "list":
        for path in [platform(), *services(), *modules()]:
            print(path.relative_to(ROOT))
        return 0
    params = dict(p.split("=", 1) for p in args.param)
    try:
        cfn = union(params) if args.command == "union" else expanded(Path(args.template), params)
    except Unresolved as e:
        print(f"stacks: {e}", file=sys.stderr)
        return 1
    write(cfn, Path(args.output), f"stacks: {args.command}")
    return 0


def write(cfn: dict, out: Path, label: str) -> None:
    """Writes a CloudFormation template as sorted JSON, creating its directory, and says so."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=2, sort_keys=True) + "\n")
    print(f"{label} -> {out} ({len(cfn.get('Resources', {}))} resources)")


if __name__ == "__main__":
    sys.exit(main())
