#!/usr/bin/env python3
"""Asserts what the stacks must contain, together, for deployments to be safe.

Reads the union of the transformed platform and service stacks (infra/tools/stacks.py: modules
expanded, every import of a platform export replaced by its value), so each assertion sees the
whole application as it did when it was one template.

For each function of the contract (every <service>-http, -events and -relay function of the stacks,
found by its name, and a relay for every service folder): an alias `live`, a CodeDeploy deployment group and a role of
its own, and a failure alarm in that group that watches the function's own failure metric
(5xx responses, failed messages, events not published) for the version being deployed; for
orders-http: provisioned concurrency on the alias and an auto-scaling target on it. Every route
of the HTTP API requires the customer scope (`${AppName}/orders`). The template's rules refuse
an external JWT issuer without an audience, and a prod stack with localhost/empty/wildcard CORS
origins or callback URLs or with the payment simulator; infra/samconfig.toml's dev and staging
parameters pass them and its prod parameters are Stage prod's (the rules judge them). The public Cognito
client is a PKCE client (no secret, code grant only); the client-credentials smoke client is
never created in prod. Least privilege, for any function: no wildcard action or resource, no
Scan, DeleteItem or batch writes (unless allow-listed here), table actions only on its own
service's table (its `service` tag), index queries on index ARNs only, exactly the DynamoDB
actions its template declares next to it (`Metadata.TableActions`: its adapters' calls), every
KMS grant limited by `kms:ViaService`, and events:PutEvents only with `events:source` =
shop.<its service>. Every
dead-letter queue is retained on deletion and replacement. Alarms: every one notifies the alarm
topic and links its runbook; every consumed queue has an age-of-oldest-message alarm, every
table a throttle alarm over the table and its indexes, the API a p99 latency alarm and a 5xx
rate alarm; prod refuses an empty AlarmEmail. The three saved Logs Insights queries read every
function's log group. Copies of the template broken in one way each must fail these last
assertions (broken_copies), so none of them passes by matching nothing.

    .venv/bin/python infra/tools/assert_transform.py .local/infra/union.cfn.json
"""

import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The EMF namespace of shared/kit/src/metrics.rs and the metric each kind of function emits
# per function version when it fails without failing its invocation.
METRICS_NAMESPACE = "ServerlessRustShop"
CUSTOMER_SCOPE = {"Fn::Sub": "${AppName}/orders"}
FAILURE_METRIC = {"http": "Responses5xx", "events": "MessagesFailed", "relay": "EventsNotPublished"}


# A function of the contract: ${AppName}-${Stage}-<service>-<kind>, kind one of FAILURE_METRIC's.
CONTRACT_NAME = re.compile(r"^\$\{AppName\}-\$\{Stage\}-([a-z0-9]+)-(" + "|".join(FAILURE_METRIC) + r")$")


def function_name(resource: dict) -> str | None:
    """The short name (<service>-<kind>) of an AWS::Lambda::Function named ${AppName}-${Stage}-<short>."""
    name = resource.get("Properties", {}).get("FunctionName")
    text = name.get("Fn::Sub") if isinstance(name, dict) else None
    if isinstance(text, str) and text.startswith("${AppName}-${Stage}-"):
        return text.removeprefix("${AppName}-${Stage}-")
    return None


def contract_functions(resources: dict) -> list:
    """Every <service>-<kind> function of the stacks (kind http, events or relay), found by name."""
    found = set()
    for r in resources.values():
        if r.get("Type") == "AWS::Lambda::Function":
            name = f"${{AppName}}-${{Stage}}-{function_name(r)}"
            if CONTRACT_NAME.match(name):
                found.add(function_name(r))
    return sorted(found)


def service_folders(root: Path = ROOT) -> list:
    return sorted(p.parent.name for p in root.glob("services/*/template.yaml"))


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


# Headers a browser sends beyond the safelisted ones, and those it must read (kit::http and
# orders' handlers name them; tools/local/local-stack/tests/template_matches_code.rs checks the source).
CORS_ALLOW_HEADERS = {"authorization", "content-type", "idempotency-key", "x-correlation-id"}
CORS_EXPOSE_HEADERS = {"location", "idempotent-replayed", "x-correlation-id"}


def cors_problems(resources: dict) -> list:
    """The API's CORS configuration is a plain one with the headers (the platform's
    AWS::ApiGatewayV2::Api CorsConfiguration; were it a SAM HttpApi, SAM would rewrite a
    configuration whose AllowOrigins is still an intrinsic into that intrinsic alone)."""
    props = resources.get("HttpApi", {}).get("Properties", {})
    raw = props.get("CorsConfiguration")
    cors = {k[0].lower() + k[1:]: v for k, v in raw.items()} if isinstance(raw, dict) else \
        props.get("Body", {}).get("x-amazon-apigateway-cors")
    if not isinstance(cors, dict) or "allowOrigins" not in cors:
        return [f"HttpApi: no CORS configuration with allowOrigins: {cors}"]
    problems = []
    if not isinstance(cors["allowOrigins"], list):
        problems.append(f"HttpApi: CORS allowOrigins is not a list: {cors['allowOrigins']!r}")
    for key, wanted in (("allowHeaders", CORS_ALLOW_HEADERS), ("exposeHeaders", CORS_EXPOSE_HEADERS)):
        missing = wanted - {h.lower() for h in cors.get(key, []) if isinstance(h, str)}
        if missing:
            problems.append(f"HttpApi: CORS {key} lacks {sorted(missing)}")
    return problems


def routes_of(resources: dict) -> dict:
    """Route key -> (authorizer, scopes) of every route: the services' AWS::ApiGatewayV2::Route
    resources, and the operations of an OpenAPI body (a SAM HttpApi with events) if any."""
    routes = {}
    for r in resources.values():
        props = r.get("Properties", {})
        if r.get("Type") == "AWS::ApiGatewayV2::Route":
            authorizer = props.get("AuthorizerId") if props.get("AuthorizationType") == "JWT" else None
            routes[props.get("RouteKey")] = (authorizer, props.get("AuthorizationScopes", []))
        if r.get("Type") == "AWS::ApiGatewayV2::Api":
            for path, ops in props.get("Body", {}).get("paths", {}).items():
                for method, op in ops.items():
                    if method != "options":
                        scopes = [s for req in op.get("security", []) for s in req.get("JwtAuthorizer", [])]
                        routes[f"{method.upper()} {path}"] = ({"Ref": "JwtAuthorizer"} if scopes else None, scopes)
    return routes


def route_scope_problems(resources: dict) -> list:
    """Every route of the HTTP API needs the JWT authorizer with the customer scope, so ID
    tokens and tokens without the scope get 403."""
    routes = routes_of(resources)
    if not routes:
        return ["HttpApi: no routes"]
    problems = []
    for key, (authorizer, scopes) in sorted(routes.items()):
        if authorizer != {"Ref": "JwtAuthorizer"}:
            problems.append(f"route {key}: not behind the platform's JwtAuthorizer ({authorizer})")
        if CUSTOMER_SCOPE not in scopes:
            problems.append(f"route {key}: does not require the customer scope ({scopes})")
    return problems


def parameter_values(template: dict, overrides: dict) -> dict:
    """Parameter values as CloudFormation sees them: the defaults (a parameter without one is
    missing, None), overridden; list parameters split on commas."""
    params = {}
    for name, spec in template.get("Parameters", {}).items():
        value = overrides.get(name, spec.get("Default"))
        if value is not None and "List" in spec.get("Type", ""):
            value = [v.strip() for v in str(value).split(",")]
        params[name] = value
    return params


def evaluate(expr, params: dict, conditions: dict | None = None):
    """The value of a rule or condition expression (Ref to a parameter, the condition
    functions, Fn::Contains and Condition)."""
    if isinstance(expr, list):
        return [evaluate(e, params, conditions) for e in expr]
    if not isinstance(expr, dict):
        return expr
    (fn, arg), = expr.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Condition":
        return evaluate((conditions or {})[arg], params, conditions)
    if fn == "Fn::Contains":
        return evaluate(arg[1], params, conditions) in evaluate(arg[0], params, conditions)
    if fn == "Fn::Equals":
        return evaluate(arg[0], params, conditions) == evaluate(arg[1], params, conditions)
    if fn == "Fn::Not":
        return not evaluate(arg[0], params, conditions)
    if fn == "Fn::And":
        return all(evaluate(a, params, conditions) for a in arg)
    if fn == "Fn::Or":
        return any(evaluate(a, params, conditions) for a in arg)
    raise ValueError(f"unsupported rule function {fn}")


def rules_accept(template: dict, overrides: dict) -> bool:
    """Whether CloudFormation would accept the parameters: every parameter has a value (its
    default or an override) within its AllowedPattern / AllowedValues, and every rule whose
    condition holds has all its assertions true."""
    params = parameter_values(template, overrides)
    if any(v is None for v in params.values()):
        return False
    for name, spec in template.get("Parameters", {}).items():
        values = params[name] if isinstance(params[name], list) else [params[name]]
        if "AllowedPattern" in spec and not all(re.fullmatch(spec["AllowedPattern"], str(v)) for v in values):
            return False
        if "AllowedValues" in spec and not all(v in spec["AllowedValues"] for v in values):
            return False
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        if not all(evaluate(a["Assert"], params) for a in rule.get("Assertions", [])):
            return False
    return True


# What a dev stack is given (infra/samconfig.toml) and what a real prod stack would be.
LOCAL_WEB = {"CorsAllowOrigin": "https://localhost:3000", "CallbackUrls": "https://localhost:3000"}
REAL_WEB = {"CorsAllowOrigin": "https://shop.example.org", "CallbackUrls": "https://shop.example.org/callback"}
PROD = {"Stage": "prod", "PaymentProvider": "acme", "AlarmEmail": "oncall@example.org"}


def rule_problems(template: dict) -> list:
    issuer = "https://issuer.example.com/"
    cases = [
        (LOCAL_WEB, True, "dev with localhost origins and the simulator"),
        ({**LOCAL_WEB, "JwtIssuer": issuer, "JwtAudience": "client-1"}, True, "an external issuer with an audience"),
        ({**LOCAL_WEB, "JwtIssuer": issuer}, False, "an external issuer without an audience"),
        ({}, False, "a stack without CORS origins and callback URLs"),
        ({**REAL_WEB, **PROD}, True, "prod with real origins, callback URLs and provider"),
        ({**REAL_WEB, "Stage": "prod"}, False, "prod with the default payment provider (the simulator)"),
        ({**REAL_WEB, **PROD, "PaymentProvider": "simulator"}, False, "prod with the payment simulator"),
        ({**LOCAL_WEB, **PROD}, False, "prod with localhost origins and callback URLs"),
        ({**REAL_WEB, **PROD, "CorsAllowOrigin": "https://shop.example.org,https://localhost:3000"}, False,
         "an origin list (one origin only)"),
        ({**REAL_WEB, **PROD, "CorsAllowOrigin": "https://shop.example.org/app"}, False, "an origin with a path"),
        ({**REAL_WEB, **PROD, "CorsAllowOrigin": "http://localhost:3000"}, False, "prod with an http localhost origin"),
        ({**REAL_WEB, **PROD, "CorsAllowOrigin": "*"}, False, "prod with a wildcard origin"),
        ({**REAL_WEB, **PROD, "CallbackUrls": "https://localhost:3000/callback"}, False,
         "prod with a localhost callback URL"),
        ({**REAL_WEB, **PROD, "CorsAllowOrigin": ""}, False, "prod with an empty origin"),
        ({**REAL_WEB, **PROD, "CallbackUrls": ""}, False, "prod with an empty callback URL"),
        ({**REAL_WEB, **PROD, "AlarmEmail": ""}, False, "prod without an AlarmEmail (nobody gets its alarms)"),
        ({**REAL_WEB, **PROD, "AlarmEmail": "oncall"}, False, "an AlarmEmail that is not an address"),
        ({**LOCAL_WEB, "AlarmEmail": "dev@example.org"}, True, "dev with an AlarmEmail"),
    ]
    return [f"rules: {what} {'refused' if expected else 'accepted'}"
            for overrides, expected, what in cases if rules_accept(template, overrides) != expected]


def samconfig_overrides(path: Path) -> dict:
    """Each environment's `parameter_overrides` of infra/samconfig.toml, as a dict."""
    config = tomllib.loads(path.read_text())
    envs = {}
    for env, commands in config.items():
        if not isinstance(commands, dict):
            continue
        overrides = commands.get("deploy", {}).get("parameters", {}).get("parameter_overrides")
        if overrides is not None:
            words = shlex.split(overrides) if isinstance(overrides, str) else overrides
            envs[env] = dict(w.split("=", 1) for w in words)
    return envs


def samconfig_problems(template: dict, path: Path) -> list:
    """dev and staging deploy with what samconfig.toml gives them; prod's parameters are those of
    Stage prod, so the template's rules judge them: as shipped they lack the origins, callback
    URLs, provider and alarm e-mail a fork sets (the rules refuse them, rule_problems proves it);
    a fork's completed ones pass."""
    envs = samconfig_overrides(path)
    problems = [f"samconfig: no [{env}.deploy.parameters] parameter_overrides"
                for env in ("dev", "staging", "prod") if env not in envs]
    for env in ("dev", "staging"):
        if env in envs and not rules_accept(template, envs[env]):
            problems.append(f"samconfig: {env}'s parameter_overrides miss a parameter or break a rule")
    if "prod" in envs and envs["prod"].get("Stage") != "prod":
        problems.append("samconfig: prod's parameter_overrides do not set Stage=prod (the prod rules would not apply)")
    return problems


def stack_conditions(template: dict, overrides: dict) -> dict:
    """The template's conditions, evaluated for the parameters."""
    params = parameter_values(template, overrides)
    conditions = template.get("Conditions", {})
    return {name: bool(evaluate(expr, params, conditions)) for name, expr in conditions.items()}


def cognito_problems(template: dict) -> list:
    """The app client is a public PKCE client: no secret, the authorization code grant only
    (Cognito verifies a code_challenge when the client sends one; it has no setting to demand
    it), no password or SRP sign-in bypassing the hosted UI. The client-credentials smoke
    client exists outside prod only."""
    resources = template["Resources"]
    problems = []
    app = resources.get("UserPoolClient", {}).get("Properties", {})
    if app.get("GenerateSecret") is not False:
        problems.append("UserPoolClient: a public client must not have a secret (GenerateSecret: false)")
    if app.get("AllowedOAuthFlows") != ["code"]:
        problems.append(f"UserPoolClient: OAuth flows must be [code], not {app.get('AllowedOAuthFlows')}")
    direct = [f for f in app.get("ExplicitAuthFlows", []) if f != "ALLOW_REFRESH_TOKEN_AUTH"]
    if direct:
        problems.append(f"UserPoolClient: sign-in flows outside the hosted UI's code grant: {direct}")
    if app.get("CallbackURLs") != {"Ref": "CallbackUrls"}:
        problems.append(f"UserPoolClient: CallbackURLs must be the CallbackUrls parameter, not {app.get('CallbackURLs')}")
    smoke = [rid for rid, r in resources.items() if r.get("Type") == "AWS::Cognito::UserPoolClient"
             and "client_credentials" in r.get("Properties", {}).get("AllowedOAuthFlows", [])]
    if not smoke:
        problems.append("no client-credentials (smoke) client outside prod")
    for rid in smoke:
        condition = resources[rid].get("Condition")
        for stage, expected in (("dev", True), ("staging", True), ("prod", False)):
            created = condition is None or stack_conditions(template, {**LOCAL_WEB, "Stage": stage})[condition]
            if created != expected:
                problems.append(f"{rid}: client-credentials client {'not ' if expected else ''}created on {stage}")
    return problems


# Calls no function makes (docs/architecture.md, "Permissions"): a Scan reads every customer's
# items, DeleteItem and batch writes bypass the conditional writes. A function that truly
# needs one is listed here with its reason.
FORBIDDEN_TABLE_ACTIONS = {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*"}
TABLE_ACTION_ALLOW_LIST: dict = {}
# What each function's adapters call (services/*/src/adapters, kit::dynamo, kit::idempotency) is
# declared next to the function, in its template: `Metadata: {TableActions: [dynamodb:GetItem, ...]}`
# (SAM keeps a function's Metadata on the AWS::Lambda::Function); its role must grant exactly those.
STREAM_ACTIONS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}


def role_statements(resources: dict, fid: str) -> list:
    role_id = resources.get(fid, {}).get("Properties", {}).get("Role", {}).get("Fn::GetAtt", [None])[0]
    role = resources.get(role_id, {})
    return [st for policy in role.get("Properties", {}).get("Policies", [])
            for st in as_list(policy.get("PolicyDocument", {}).get("Statement", []))]


def getatt_id(value):
    getatt = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    return getatt[0] if isinstance(getatt, list) and getatt else None


def dlq_problems(resources: dict) -> list:
    """Every dead-letter queue — a redrive target, a rule target's DLQ, an event source
    mapping's on-failure destination, the bus's DLQ — is retained on deletion and replacement, and named as
    infra/policies/sqs.guard recognises DLQs (logical id ending in Dlq)."""
    dlqs = set()
    for r in resources.values():
        props = r.get("Properties", {})
        if r.get("Type") == "AWS::SQS::Queue":
            dlqs.add(getatt_id(props.get("RedrivePolicy", {}).get("deadLetterTargetArn")))
        elif r.get("Type") == "AWS::Events::Rule":
            dlqs.update(getatt_id(t.get("DeadLetterConfig", {}).get("Arn")) for t in props.get("Targets", []))
        elif r.get("Type") == "AWS::Lambda::EventSourceMapping":
            dlqs.add(getatt_id(props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")))
        elif r.get("Type") == "AWS::Events::EventBus":
            dlqs.add(getatt_id(props.get("DeadLetterConfig", {}).get("Arn")))
    dlqs.discard(None)
    problems = [] if dlqs else ["no dead-letter queue found"]
    for qid in sorted(dlqs):
        queue = resources.get(qid, {})
        if queue.get("DeletionPolicy") != "Retain" or queue.get("UpdateReplacePolicy") != "Retain":
            problems.append(f"{qid}: a dead-letter queue must have DeletionPolicy and UpdateReplacePolicy Retain")
        if not qid.endswith("Dlq"):
            problems.append(f"{qid}: a dead-letter queue's logical id must end in Dlq (sqs.guard selects DLQs by it)")
    buses = [rid for rid, r in resources.items() if r.get("Type") == "AWS::Events::EventBus"]
    for rid in buses:
        if not getatt_id(resources[rid].get("Properties", {}).get("DeadLetterConfig", {}).get("Arn")):
            problems.append(f"{rid}: a bus encrypted with a customer managed key needs a DeadLetterConfig")
    return problems


def service_of(function: dict) -> str | None:
    """The value of a function's `service` tag."""
    return next((t.get("Value") for t in function.get("Properties", {}).get("Tags", []) if t.get("Key") == "service"), None)


def resource_ids(value) -> set:
    """The logical ids a statement's Resource names (GetAtt, Ref, ${Id.Attr} of a Sub)."""
    text = json.dumps(value)
    return set(re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)"', text)) | set(re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)) \
        | set(re.findall(r"\$\{([A-Za-z0-9]+)\.", text))


def least_privilege_problems(resources: dict) -> list:
    """For any function: no wildcard action or resource; its DynamoDB actions exactly the ones
    its template declares (Metadata.TableActions), only on its own service's table, Query only
    on an index ARN, nothing forbidden unless allow-listed; every KMS grant has kms:ViaService."""
    problems = []
    functions = {rid: r for rid, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
    tables = {rid for rid, r in resources.items() if r.get("Type") == "AWS::DynamoDB::Table"}
    for fid in sorted(functions):
        binary = function_name(functions[fid]) or fid
        service = service_of(functions[fid])
        statements = [st for st in role_statements(resources, fid) if st.get("Effect") == "Allow"]
        granted = set()
        for st in statements:
            actions = set(as_list(st.get("Action", [])))
            # A whole service's or a table's wildcard (SAM's SQSSendMessagePolicy's sqs:SendMessage*,
            # SendMessage and SendMessageBatch of one queue, is not one).
            for action in sorted(a for a in actions if a == "*" or a.endswith(":*") or (a.startswith("dynamodb:") and "*" in a)):
                problems.append(f"{binary}: allows the wildcard action {action}")
            if "*" in as_list(st.get("Resource")):
                problems.append(f"{binary}: statement {st.get('Sid', '?')} on Resource '*'")
            table = {a for a in actions if a.startswith("dynamodb:")} - STREAM_ACTIONS
            granted |= table
            if table:
                others = sorted((resource_ids(st.get("Resource")) & tables) - {f"{str(service).capitalize()}Table"})
                if others or f"{str(service).capitalize()}Table" not in resource_ids(st.get("Resource")):
                    problems.append(f"{binary}: DynamoDB actions on {others or st.get('Resource')}, "
                                    f"not only its own service's table ({service})")
            for action in sorted(table & FORBIDDEN_TABLE_ACTIONS - set(TABLE_ACTION_ALLOW_LIST.get(binary, []))):
                problems.append(f"{binary}: allows {action}")
            if "dynamodb:Query" in table:
                if table != {"dynamodb:Query"} or not all("/index/" in json.dumps(r) for r in as_list(st.get("Resource"))):
                    problems.append(f"{binary}: dynamodb:Query must be a statement of its own on index ARNs")
            if any(a.startswith("kms:") for a in actions):
                via = st.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
                if not via:
                    problems.append(f"{binary}: KMS statement {st.get('Sid', '?')} without a kms:ViaService condition")
        declared = functions[fid].get("Metadata", {}).get("TableActions")
        if declared is not None and granted != set(declared):
            problems.append(f"{binary}: DynamoDB actions {sorted(granted)} are not the ones its template "
                            f"declares (Metadata.TableActions) {sorted(declared)}")
        elif declared is None and granted:
            problems.append(f"{binary}: DynamoDB actions {sorted(granted)} but its template declares none "
                            "(Metadata.TableActions: its adapters' calls)")
    return problems


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def relay_source_problems(resources: dict, services: list) -> list:
    """Any function may put only events of its own service's source (`events:source` =
    shop.<its service tag> on every statement that allows `events:PutEvents`), so a compromised
    relay cannot forge another service's events; every service (folder) has a relay that may."""
    problems = []
    functions = {rid: r for rid, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
    for service in services:
        fid = next((rid for rid, r in functions.items() if function_name(r) == f"{service}-relay"), None)
        if fid is None or not any("events:PutEvents" in as_list(st.get("Action", []))
                                  for st in role_statements(resources, fid)):
            problems.append(f"{service}-relay: no relay function whose role allows events:PutEvents")
    for fid, function in sorted(functions.items()):
        service = service_of(function)
        puts = [st for st in role_statements(resources, fid) if "events:PutEvents" in as_list(st.get("Action", []))]
        for st in puts:
            source = st.get("Condition", {}).get("StringEquals", {}).get("events:source")
            if service is None or source != f"shop.{service}":
                problems.append(f"{function_name(function) or fid}: events:PutEvents without "
                                f"events:source = shop.<its service> ({service!r}: {source!r})")
    return problems


# Where every alarm's AlarmDescription ends: a page and heading of docs/runbooks under the
# RunbookBaseUrl parameter (infra/tools/check-runbooks.py checks that the page and heading exist).
RUNBOOK_LINK = re.compile(r" Runbook: \$\{RunbookBaseUrl\}/[a-z0-9-]+\.md#[a-z0-9-]+$")
# The three Logs Insights queries (docs/runbooks/README.md, "Saved queries") and what each must
# contain: the saga by any of its ids, duration by cold start from Lambda's platform.report
# records, errors by correlation id.
QUERY_MARKERS = {
    "saga by id": ["order_id =", "xray_trace_id =", "correlation_id =", "sort @timestamp",
                   "service", "function_version", "message", "level", "event_type", "message_id"],
    "duration by cold start": ['type = "platform.report"', "record.metrics.durationMs",
                               "record.metrics.initDurationMs", "pct(", "50", "99"],
    "errors by correlation id": ['level = "ERROR"', "by correlation_id"],
}


def alarms_of(resources: dict) -> dict:
    return {rid: r.get("Properties", {}) for rid, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}


def metric_stats(props: dict) -> list:
    """(id, namespace, metric, {dimension: value}, stat) of an alarm: its one metric, or each
    MetricStat of its metric math."""
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        stat = props.get("ExtendedStatistic", props.get("Statistic"))
        return [(None, props.get("Namespace"), props["MetricName"], dims, stat)]
    out = []
    for m in props.get("Metrics", []):
        ms = m.get("MetricStat")
        if ms:
            metric = ms.get("Metric", {})
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            out.append((m.get("Id"), metric.get("Namespace"), metric.get("MetricName"), dims, ms.get("Stat")))
    return out


def alarm_expression(props: dict) -> str:
    """The expression of the one metric-math query an alarm evaluates ("" for a plain metric)."""
    returned = [m for m in props.get("Metrics", []) if m.get("ReturnData", True) and "Expression" in m]
    return returned[0]["Expression"] if len(returned) == 1 else ""


def alarm_action_problems(resources: dict) -> list:
    """Every alarm notifies the alarm topic when it fires and when it returns to OK, and its
    description ends with a link to its runbook."""
    problems = []
    topic = [{"Ref": "AlarmTopic"}]
    for rid, props in sorted(alarms_of(resources).items()):
        if props.get("AlarmActions") != topic or props.get("OKActions") != topic:
            problems.append(f"{rid}: AlarmActions and OKActions must be [AlarmTopic]")
        description = props.get("AlarmDescription")
        text = description.get("Fn::Sub") if isinstance(description, dict) else None
        if not isinstance(text, str) or not RUNBOOK_LINK.search(text):
            problems.append(f"{rid}: AlarmDescription does not end with "
                            f"'Runbook: ${{RunbookBaseUrl}}/<page>.md#<heading>' ({description!r:.80})")
    return problems


def queue_age_problems(template: dict) -> list:
    """Every queue a function consumes has an alarm on the age of its oldest message, at the
    QueueAgeThresholdSeconds parameter; its default outlasts the retries of one failing message
    ((MaxReceiveCount - 1) visibility timeouts) and fires well before the saga timeout."""
    resources = template["Resources"]
    consumed = sorted({getatt_id(r["Properties"].get("EventSourceArn")) for r in resources.values()
                       if r.get("Type") == "AWS::Lambda::EventSourceMapping"} & {
        rid for rid, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"})
    problems = [] if consumed else ["no SQS queue consumed by an event source mapping"]
    alarms = alarms_of(resources)
    for qid in consumed:
        watching = [aid for aid, props in alarms.items() for _, ns, metric, dims, stat in metric_stats(props)
                    if ns == "AWS/SQS" and metric == "ApproximateAgeOfOldestMessage" and stat == "Maximum"
                    and dims == {"QueueName": {"Fn::GetAtt": [qid, "QueueName"]}}]
        if not watching:
            problems.append(f"{qid}: consumed by a function but no alarm on its ApproximateAgeOfOldestMessage (Maximum)")
        for aid in watching:
            if alarms[aid].get("Threshold") != {"Ref": "QueueAgeThresholdSeconds"}:
                problems.append(f"{aid}: threshold is not the QueueAgeThresholdSeconds parameter")
    params = template.get("Parameters", {})
    default = lambda name: int(params.get(name, {}).get("Default", 0))  # noqa: E731
    age = default("QueueAgeThresholdSeconds")
    retries = (default("MaxReceiveCount") - 1) * default("QueueVisibilityTimeout")
    if not retries < age < default("SagaTimeoutMinutes") * 60:
        problems.append(f"QueueAgeThresholdSeconds default {age} s is not between one failing message's retries "
                        f"({retries} s) and the saga timeout ({default('SagaTimeoutMinutes') * 60} s)")
    return problems


def table_throttle_problems(resources: dict) -> list:
    """Every table has an alarm on the sum of its read and write throttle events, of the table
    and of each of its global secondary indexes (the TableName dimension alone leaves out the
    indexes, whose throttling also rejects the table's writes)."""
    problems = []
    alarms = alarms_of(resources)
    tables = sorted(rid for rid, r in resources.items() if r.get("Type") == "AWS::DynamoDB::Table")
    if not tables:
        return ["no AWS::DynamoDB::Table"]
    for tid in tables:
        indexes = [None] + [g["IndexName"] for g in resources[tid]["Properties"].get("GlobalSecondaryIndexes", [])]
        wanted = {(metric, index) for metric in ("ReadThrottleEvents", "WriteThrottleEvents") for index in indexes}
        found = False
        for aid, props in alarms.items():
            seen = {}
            for mid, ns, metric, dims, stat in metric_stats(props):
                if ns == "AWS/DynamoDB" and dims.get("TableName") == {"Ref": tid} and stat == "Sum":
                    seen[(metric, dims.get("GlobalSecondaryIndexName"))] = mid
            if not seen:
                continue
            found = True
            missing = wanted - set(seen)
            if missing:
                problems.append(f"{aid}: does not sum {sorted(f'{m} {i or tid}' for m, i in missing)}")
            expression = alarm_expression(props)
            unused = [mid for mid in seen.values() if not mid or not re.search(rf"\b{mid}\b", expression)]
            if unused:
                problems.append(f"{aid}: its expression {expression!r} leaves out {unused}")
        if not found:
            problems.append(f"{tid}: no alarm on its Read/WriteThrottleEvents")
    return problems


def api_alarm_problems(resources: dict) -> list:
    """The HTTP API has a p99 latency alarm and a 5xx alarm that is a rate (5xx / Count), both on
    the API's $default stage."""
    problems = []
    stage = {"ApiId": {"Ref": "HttpApi"}, "Stage": "$default"}
    alarms = alarms_of(resources)
    if not any(ns == "AWS/ApiGateway" and metric == "Latency" and stat == "p99" and dims == stage
               for props in alarms.values() for _, ns, metric, dims, stat in metric_stats(props)):
        problems.append("HttpApi: no alarm on AWS/ApiGateway Latency p99 (ApiId, Stage $default)")
    rate = alarms.get("Api5xxAlarm", {})
    ids = {metric: mid for mid, ns, metric, dims, _ in metric_stats(rate) if ns == "AWS/ApiGateway" and dims == stage}
    expression = alarm_expression(rate)
    if not ({"5xx", "Count"} <= set(ids) and ids["5xx"] and ids["Count"]
            and re.search(rf"\b{ids['5xx']}\b.*/\s*\b{ids['Count']}\b", expression)):
        problems.append(f"Api5xxAlarm: not a rate of 5xx over Count on the $default stage ({expression!r})")
    return problems


def query_definition_problems(resources: dict) -> list:
    """The three saved Logs Insights queries exist and read every function's log group; every
    function logs JSON with system level INFO, so Lambda writes the platform.report records the
    duration query reads."""
    problems = []
    functions = {rid: r["Properties"] for rid, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
    log_groups = {}
    for fid, props in sorted(functions.items()):
        logging_config = props.get("LoggingConfig", {})
        if logging_config.get("LogFormat") != "JSON" or logging_config.get("SystemLogLevel") not in ("INFO", "DEBUG"):
            problems.append(f"{fid}: LoggingConfig must be LogFormat JSON with SystemLogLevel INFO "
                            f"(platform.report records), not {logging_config}")
        group = logging_config.get("LogGroup")
        # A function next to its function module names the module's log group (a Ref would read a
        # nested stack's output, whose alarms read the function's version: a cycle).
        by_name = {json.dumps(r["Properties"].get("LogGroupName"), sort_keys=True): {"Ref": rid}
                   for rid, r in resources.items() if r.get("Type") == "AWS::Logs::LogGroup"}
        group = by_name.get(json.dumps(group, sort_keys=True), group)
        if not (isinstance(group, dict) and resources.get(group.get("Ref"), {}).get("Type") == "AWS::Logs::LogGroup"):
            problems.append(f"{fid}: LoggingConfig.LogGroup is not a log group of the template ({group})")
        else:
            log_groups[fid] = group
    queries = {rid: r["Properties"] for rid, r in resources.items() if r.get("Type") == "AWS::Logs::QueryDefinition"}
    for what, markers in QUERY_MARKERS.items():
        matching = [qid for qid, q in queries.items() if all(m in str(q.get("QueryString", "")) for m in markers)]
        if not matching:
            problems.append(f"no AWS::Logs::QueryDefinition '{what}' (a query string with {markers})")
            continue
        # One query of each kind per stack, over the stack's own log groups: together they read all.
        names = [n for qid in matching for n in as_list(queries[qid].get("LogGroupNames", []))]
        missing = sorted(fid for fid, group in log_groups.items() if group not in names)
        if missing:
            problems.append(f"'{what}' queries: their LogGroupNames leave out the log groups of {missing}")
    return problems



def observability_problems(template: dict) -> list:
    resources = template["Resources"]
    return [*alarm_action_problems(resources), *queue_age_problems(template), *table_throttle_problems(resources),
            *api_alarm_problems(resources), *query_definition_problems(resources)]


def broken_copies(template: dict) -> list:
    """Copies of the template each broken in one way the least-privilege and observability assertions must catch,
    with the problem expected: so an assertion that stops matching anything fails here."""
    def broken(change) -> dict:
        copy = json.loads(json.dumps(template))
        change(copy["Resources"])
        return copy

    def drop_index_metrics(resources: dict) -> None:
        props = resources["NotifyTableThrottlesAlarm"]["Properties"]
        props["Metrics"] = [m for m in props["Metrics"] if "GlobalSecondaryIndexName" not in json.dumps(m)]

    def unlinked(resources: dict) -> None:
        resources["OrdersRelayIteratorAgeAlarm"]["Properties"]["AlarmDescription"] = "No runbook."

    def count_not_rate(resources: dict) -> None:
        resources["Api5xxAlarm"]["Properties"]["Metrics"][0]["Expression"] = "errors"

    def log_group_left_out(resources: dict) -> None:
        resources["PaymentsQueriesErrorsByCorrelationIdQuery"]["Properties"]["LogGroupNames"].remove(
            {"Ref": "PaymentsRelayLogGroup"})

    def no_saga_query(resources: dict) -> None:
        for qid in [q for q in resources if q.endswith("SagaByIdQuery")]:
            resources.pop(qid)

    def silent_alarm(resources: dict) -> None:
        del resources["NotifyQueueDlqAlarm"]["Properties"]["OKActions"]

    # Least privilege, on functions found rather than named: one with declared table actions, its
    # role's first statement on its table, another service's table, and a relay.
    functions = {rid: r for rid, r in template["Resources"].items() if r.get("Type") == "AWS::Lambda::Function"}
    declaring = next(rid for rid, r in sorted(functions.items()) if r.get("Metadata", {}).get("TableActions"))
    own = f"{service_of(functions[declaring]).capitalize()}Table"
    other = next(rid for rid, r in sorted(template["Resources"].items())
                 if r.get("Type") == "AWS::DynamoDB::Table" and rid != own)
    relay = next(rid for rid, r in sorted(functions.items()) if (function_name(r) or "").endswith("-relay"))
    name, relay_name = function_name(functions[declaring]), function_name(functions[relay])

    def table_statement(resources: dict) -> dict:
        return next(st for st in role_statements(resources, declaring)
                    if any(str(a).startswith("dynamodb:") for a in as_list(st.get("Action"))))

    def other_table(resources: dict) -> None:
        table_statement(resources)["Resource"] = {"Fn::GetAtt": [other, "Arn"]}

    def undeclared_action(resources: dict) -> None:
        st = table_statement(resources)
        st["Action"] = [*as_list(st["Action"]), "dynamodb:ConditionCheckItem"]

    def wildcard(resources: dict) -> None:
        table_statement(resources)["Action"] = "dynamodb:*"

    def forged_source(resources: dict) -> None:
        for st in role_statements(resources, relay):
            if "events:PutEvents" in as_list(st.get("Action")):
                st["Condition"]["StringEquals"]["events:source"] = "shop.someone-else"

    return [
        (broken(other_table), f"{name}: DynamoDB actions on ['{other}'], not only its own service's table"),
        (broken(undeclared_action), f"{name}: DynamoDB actions "),
        (broken(wildcard), f"{name}: allows the wildcard action dynamodb:*"),
        (broken(forged_source), f"{relay_name}: events:PutEvents without events:source = shop.<its service>"),
        (broken(lambda r: r.pop("PaymentsQueueAgeAlarm")),
         "PaymentsQueue: consumed by a function but no alarm on its ApproximateAgeOfOldestMessage (Maximum)"),
        (broken(drop_index_metrics), "NotifyTableThrottlesAlarm: does not sum ['ReadThrottleEvents gsi1', 'WriteThrottleEvents gsi1']"),
        (broken(lambda r: r.pop("OrdersTableThrottlesAlarm")), "OrdersTable: no alarm on its Read/WriteThrottleEvents"),
        (broken(unlinked), "OrdersRelayIteratorAgeAlarm: AlarmDescription does not end with"),
        (broken(silent_alarm), "NotifyQueueDlqAlarm: AlarmActions and OKActions must be [AlarmTopic]"),
        (broken(lambda r: r.pop("ApiLatencyP99Alarm")), "HttpApi: no alarm on AWS/ApiGateway Latency p99"),
        (broken(count_not_rate), "Api5xxAlarm: not a rate of 5xx over Count"),
        (broken(log_group_left_out),
         "'errors by correlation id' queries: their LogGroupNames leave out the log groups of ['PaymentsRelayFunction']"),
        (broken(no_saga_query), "no AWS::Logs::QueryDefinition 'saga by id'"),
    ]


def self_check_problems(template: dict) -> list:
    """Each broken copy of broken_copies fails with its expected problem."""
    problems = []
    for copy, expected in broken_copies(template):
        found = [*observability_problems(copy), *least_privilege_problems(copy["Resources"]),
                 *relay_source_problems(copy["Resources"], [])]
        if not any(p.startswith(expected) for p in found):
            problems.append(f"self-check: a template where '{expected}' should hold passed ({found})")
    return problems


def main() -> int:
    template = json.load(open(sys.argv[1]))
    resources = template["Resources"]
    problems = []
    roles_seen = {}
    contract = contract_functions(resources)
    services = service_folders()
    for service in services:
        for kind in ("http", "events", "relay"):
            if f"{service}-{kind}" not in contract and kind == "relay":
                problems.append(f"{service}: no {service}-{kind} function")
    for binary in contract:
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
    problems.extend(cors_problems(resources))
    problems.extend(rule_problems(template))
    problems.extend(samconfig_problems(template, Path(__file__).resolve().parents[1] / "samconfig.toml"))
    problems.extend(cognito_problems(template))
    problems.extend(relay_source_problems(resources, services))
    problems.extend(least_privilege_problems(resources))
    problems.extend(dlq_problems(resources))
    problems.extend(observability_problems(template))
    problems.extend(self_check_problems(template))

    for p in problems:
        print(f"  {p}")
    print(f"transform assertions: {len(contract)} functions of {len(services)} services, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
