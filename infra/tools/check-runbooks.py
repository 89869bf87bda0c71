#!/usr/bin/env python3
"""Every CloudWatch alarm of the stacks has a runbook page that names it.

Reads the `AWS::CloudWatch::Alarm` resources of the union of the platform and service stacks
(infra/tools/stacks.py writes it, modules expanded: infra/check.sh passes it as a .json), or of
one YAML template as written, and fails when no page
under docs/runbooks/ mentions an alarm's logical id (as a whole word) together with its
`AlarmName` (the part after `${AppName}-${Stage}-`, what the notification shows), when a
page names in backticks an alarm id (`...Alarm`) the template no longer has, or when an
alarm's `AlarmDescription` does not end with the link the notification carries,
`Runbook: ${RunbookBaseUrl}/<page>.md#<anchor>`, to a page that names the alarm and to one of
its headings (GitHub's anchors). An alarm of a service (its name starts with the name of a
folder of services/) is also named by the generic forms a page gives for every service:
`<Service>QueueDlqAlarm` with `<service>-queue-dlq`, so a new service's alarms need no edit of
the pages. Stdlib only, so infra/check.sh can run it with the project's
Python.

    python3 infra/tools/check-runbooks.py [--template .local/infra/union.cfn.json | a template.yaml] [--runbooks docs/runbooks]
"""

import argparse
import json
import pathlib
import re
import sys

ALARM = re.compile(
    r"^  ([A-Za-z0-9]+):\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
    r"      AlarmName: !Sub \$\{AppName\}-\$\{Stage\}-(\S+)\s*$",
    re.MULTILINE,
)
ANY_ALARM = re.compile(r"^  [A-Za-z0-9]+:\n    Type: AWS::CloudWatch::Alarm\s*$", re.MULTILINE)
NAMED_IN_BACKTICKS = re.compile(r"`([A-Z][A-Za-z0-9]*Alarm)`")
# An alarm's AlarmDescription: `!Sub '...'`, `!Sub "..."` or a folded `!Sub >-` block.
DESCRIPTION = re.compile(
    r"^      AlarmDescription: !Sub (?:'(?P<single>.*)'|\"(?P<double>.*)\"|>-\n(?P<folded>(?:        .*\n)+))",
    re.MULTILINE,
)
LINK = re.compile(r"Runbook: \$\{RunbookBaseUrl\}/(?P<page>[A-Za-z0-9_.-]+\.md)#(?P<anchor>[a-z0-9_-]+)$")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def anchors(text: str) -> set:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    turned into hyphens, a repeated one suffixed -1, -2, ..."""
    seen: dict = {}
    out = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def alarm_blocks(template: str) -> dict:
    """Each alarm's logical id and the text of its resource (up to the next resource)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^  ([A-Za-z0-9]+):\n    Type: AWS::CloudWatch::Alarm\s*$",
                                                           template, re.MULTILINE)]
    blocks = {}
    for start, alarm in starts:
        end = re.compile(r"^  [A-Za-z0-9]+:\s*$|^\S", re.MULTILINE).search(template, start + len(alarm) + 4)
        blocks[alarm] = template[start:end.start() if end else len(template)]
    return blocks


def yaml_alarms(template: str) -> dict | None:
    """Alarm id -> (name, description text or None) of a YAML template as written; None when an
    alarm does not start with its AlarmName."""
    alarms = dict(ALARM.findall(template))
    if len(alarms) != len(ANY_ALARM.findall(template)):
        return None
    out = {}
    for alarm, block in alarm_blocks(template).items():
        match = DESCRIPTION.search(block)
        text = (match.group("single") or match.group("double") or " ".join(match.group("folded").split())) \
            if match else None
        out[alarm] = (alarms[alarm], text)
    return out


def json_alarms(template: dict) -> dict | None:
    """The same of a CloudFormation JSON template (the union of the stacks)."""
    out = {}
    for alarm, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties", {})
        name = props.get("AlarmName", {}).get("Fn::Sub") if isinstance(props.get("AlarmName"), dict) else None
        if not isinstance(name, str) or not name.startswith("${AppName}-${Stage}-"):
            return None
        description = props.get("AlarmDescription")
        text = description.get("Fn::Sub") if isinstance(description, dict) else None
        out[alarm] = (name.removeprefix("${AppName}-${Stage}-"), " ".join(text.split()) if isinstance(text, str) else None)
    return out


def link_problems(alarm: str, text: str | None, runbooks: pathlib.Path, pages: dict, naming: list) -> list:
    """The alarm's description ends with a runbook link to a page naming it and to a heading."""
    if text is None:
        return [f"{alarm}: AlarmDescription is not !Sub '... Runbook: ${{RunbookBaseUrl}}/<page>.md#<anchor>'"]
    link = LINK.search(text.strip())
    if not link:
        return [f"{alarm}: AlarmDescription does not end with 'Runbook: ${{RunbookBaseUrl}}/<page>.md#<anchor>'"]
    page = runbooks / link.group("page")
    if page not in pages:
        return [f"{alarm}: its runbook link names {link.group('page')}, which is not a page under {runbooks}"]
    problems = []
    if page not in naming:
        problems.append(f"{alarm}: its runbook link names {link.group('page')}, a page that does not name it")
    if link.group("anchor") not in anchors(pages[page]):
        problems.append(f"{alarm}: its runbook link's anchor #{link.group('anchor')} is no heading of {link.group('page')}")
    return problems


def main() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=pathlib.Path, default=root / ".local/infra/union.cfn.json")
    parser.add_argument("--runbooks", type=pathlib.Path, default=root / "docs/runbooks")
    args = parser.parse_args()

    text = args.template.read_text(encoding="utf-8")
    found = json_alarms(json.loads(text)) if args.template.suffix == ".json" else yaml_alarms(text)
    if found is None:
        print("FAIL an alarm does not start with AlarmName: !Sub ${AppName}-${Stage}-<name>")
        return 1
    if not found:
        print(f"FAIL no AWS::CloudWatch::Alarm found in {args.template}")
        return 1
    found_alarms = found
    alarms = {alarm: name for alarm, (name, _) in found.items()}
    pages = {p: p.read_text(encoding="utf-8") for p in sorted(args.runbooks.rglob("*.md"))}
    if not pages:
        print(f"FAIL no runbook page under {args.runbooks}")
        return 1

    services = {d.name for d in (root / "services").iterdir() if d.is_dir()} if (root / "services").is_dir() else set()
    problems = []
    for alarm, name in alarms.items():
        forms = [(alarm, name)]
        service = name.split("-", 1)[0]
        if service in services and alarm.startswith(service.capitalize()):
            forms.append(("<Service>" + alarm[len(service):], "<service>" + name[len(service):]))
        patterns = [
            (re.compile(rf"(?<![A-Za-z0-9>]){re.escape(a)}\b"), re.compile(rf"(?<![A-Za-z0-9>]){re.escape(n)}(?![A-Za-z0-9-])"))
            for a, n in forms
        ]
        found = [p for p, text in pages.items() if any(w.search(text) and n.search(text) for w, n in patterns)]
        problems.extend(link_problems(alarm, found_alarms[alarm][1], args.runbooks, pages, found))
        if found:
            names = ", ".join(str(p.relative_to(args.runbooks)) for p in found)
            print(f"ok   {alarm} ({name}): {names}")
        else:
            problems.append(f"{alarm} ({name}) has no runbook page under {args.runbooks} naming both")
    known = set(alarms)
    for page, text in pages.items():
        for named in sorted(set(NAMED_IN_BACKTICKS.findall(text)) - known):
            problems.append(f"{page.relative_to(args.runbooks)} names {named}, which the template does not have")

    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{len(alarms)} alarms, {len(pages)} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
