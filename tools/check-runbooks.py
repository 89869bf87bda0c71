#!/usr/bin/env python3
"""Every CloudWatch alarm of the template has a runbook page that names it.

Reads the `AWS::CloudWatch::Alarm` resources of infra/template.yaml and fails when no page
under docs/runbooks/ mentions an alarm's logical id (as a whole word) together with its
`AlarmName` (the part after `${AppName}-${Stage}-`, what the notification shows), or when a
page names in backticks an alarm id (`...Alarm`) the template no longer has. Stdlib only, so
infra/check.sh can run it with the project's Python.

    python3 tools/check-runbooks.py [--template infra/template.yaml] [--runbooks docs/runbooks]
"""

import argparse
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


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=pathlib.Path, default=root / "infra/template.yaml")
    parser.add_argument("--runbooks", type=pathlib.Path, default=root / "docs/runbooks")
    args = parser.parse_args()

    template = args.template.read_text(encoding="utf-8")
    alarms = dict(ALARM.findall(template))
    if not alarms:
        print(f"FAIL no AWS::CloudWatch::Alarm found in {args.template}")
        return 1
    if len(alarms) != len(ANY_ALARM.findall(template)):
        print("FAIL an alarm does not start with AlarmName: !Sub ${AppName}-${Stage}-<name>")
        return 1
    pages = {p: p.read_text(encoding="utf-8") for p in sorted(args.runbooks.rglob("*.md"))}
    if not pages:
        print(f"FAIL no runbook page under {args.runbooks}")
        return 1

    problems = []
    for alarm, name in alarms.items():
        word = re.compile(rf"\b{re.escape(alarm)}\b")
        named = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9-])")
        found = [p for p, text in pages.items() if word.search(text) and named.search(text)]
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
