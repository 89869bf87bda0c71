#!/usr/bin/env python3
"""Prints the resources of a CloudFormation JSON template counted by type.

    .venv/bin/python infra/tools/count_resources.py .local/infra/union.cfn.json
"""

import json
import sys
from collections import Counter


def main() -> int:
    resources = json.load(open(sys.argv[1]))["Resources"]
    counts = Counter(r["Type"] for r in resources.values())
    width = max(len(t) for t in counts)
    for rtype, n in sorted(counts.items()):
        print(f"{rtype:<{width}}  {n:>3}")
    print(f"{'total':<{width}}  {sum(counts.values()):>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
