#!/usr/bin/env python3
"""Transforms infra/template.yaml (AWS SAM) into plain CloudFormation JSON, offline.

Uses aws-sam-translator's public `transform` with a managed-policy loader that never calls
IAM, fake credentials/region, and local CodeUri paths rewritten to placeholder S3 URIs (what
`sam package` would upload). The output is what cfn-guard and the resource counts look at.

    .venv/bin/python infra/tools/transform.py infra/template.yaml .local/infra/template.cfn.json \
        [--param Stage=prod ...]
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

# No AWS account: the translator only needs a region and partition to build ARNs.
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

SERVERLESS_WITH_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class OfflineManagedPolicyLoader:
    """The template names managed policies by ARN only, so there is nothing to look up."""

    def load(self) -> dict:
        return {}


def placeholder_code_uris(template: dict) -> None:
    """Rewrite local code paths (e.g. ../services/orders) to s3:// placeholders."""
    for logical_id, resource in template.get("Resources", {}).items():
        prop = SERVERLESS_WITH_CODE.get(resource.get("Type"))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            name = props[prop].strip("./").replace("/", "-") or logical_id
            props[prop] = f"s3://offline-artifacts/{name}.zip"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("output")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter value (repeatable)")
    args = parser.parse_args()
    # The translator logs feature-toggle lookups at warning level; they are not findings.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)

    template = yaml_parse(Path(args.template).read_text())
    placeholder_code_uris(template)
    params = dict(p.split("=", 1) for p in args.param)
    cfn = transform(template, params, OfflineManagedPolicyLoader())

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=2, sort_keys=True) + "\n")
    print(f"transform: {args.template} -> {out} ({len(cfn.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
