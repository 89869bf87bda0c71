#!/usr/bin/env python3
"""Transforms one stack's template (AWS SAM) into plain CloudFormation JSON, offline.

Uses aws-sam-translator's public `transform` with a managed-policy loader that never calls
IAM, fake credentials/region, and local CodeUri paths rewritten to placeholder S3 URIs (what
`sam package` would upload); a template without the SAM transform (a module of infra/modules)
is written as it is. The modules a stack uses stay nested stacks (`--expand` inlines them, as
infra/tools/stacks.py does). The output is what cfn-guard, checkov and the resource counts look at.

    .venv/bin/python infra/tools/transform.py infra/platform.yaml .local/infra/platform.cfn.json \\
        [--expand] [--param Stage=prod ...]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacks import Unresolved, expand_modules, transform_stack, write  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("output")
    parser.add_argument("--expand", action="store_true", help="inline the modules the stack uses")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter value (repeatable)")
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    template = Path(args.template)
    try:
        cfn = transform_stack(template, params)
        if args.expand:
            cfn = expand_modules(cfn, template.parent)
    except Unresolved as e:
        print(f"transform: {args.template}: {e}", file=sys.stderr)
        return 1
    write(cfn, Path(args.output), f"transform: {args.template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
