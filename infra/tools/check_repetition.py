#!/usr/bin/env python3
"""No two service templates share a block of lines: what every service has belongs in a module.

Reads every services/<name>/template.yaml (found, not listed), drops comments and blank lines,
replaces the service's own name in every spelling (orders, Orders, ORDERS) by a placeholder, and
reports each run of MIN_LINES or more consecutive lines that two templates have in common (the
longest run at each place). Exits 1 when there is one.

The house shape that `make new-service` writes (tools/local/new-service/skeleton/template.yaml) is
written once, there: lines of a block that a template shares with the skeleton are the shape,
not a copy, so a generated service, edited or not, does not fail the check; what remains of a
shared block beyond them still must not reach MIN_LINES.

    .venv/bin/python infra/tools/check_repetition.py [--min-lines 6] [services/*/template.yaml ...]
"""

import argparse
import re
import sys
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIN_LINES = 6
PLACEHOLDER = "@SERVICE@"
SKELETON = ROOT / "tools/local/new-service/skeleton/template.yaml"


def normalized(path: Path, service: str) -> list:
    """(line number, text) of each line that is not blank or a comment, the service named by the placeholder."""
    name = re.compile(re.escape(service), re.IGNORECASE)
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if text.strip():
            out.append((number, name.sub(PLACEHOLDER, text)))
    return out


def shared_blocks(a: list, b: list, min_lines: int) -> list:
    """(start line in a, start line in b, length) of each maximal common run of >= min_lines lines."""
    found = []
    # run[i][j]: length of the common run ending at a[i], b[j] (dynamic programming, one row at a time).
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1][1] == b[j - 1][1]:
                current[j] = previous[j - 1] + 1
        for j in range(1, len(b) + 1):
            length = current[j]
            ends_here = i == len(a) or j == len(b) or a[i][1] != b[j][1]
            if length >= min_lines and ends_here:
                found.append((a[i - length][0], b[j - length][0], length))
        previous = current
    return found


def shape_lines(lines: list, skeleton: list, min_lines: int) -> set:
    """The line numbers of `lines` in runs of >= min_lines lines it shares with the skeleton."""
    covered = set()
    numbers = [number for number, _ in lines]
    for start, _, length in shared_blocks(lines, skeleton, min_lines):
        at = numbers.index(start)
        covered.update(numbers[at:at + length])
    return covered


def beyond_shape(lines: list, start: int, length: int, shape: set) -> int:
    """The longest run of lines of the block (`length` lines of `lines` from line `start`) that are not shape lines."""
    numbers = [number for number, _ in lines]
    at = numbers.index(start)
    longest = run = 0
    for number in numbers[at:at + length]:
        run = 0 if number in shape else run + 1
        longest = max(longest, run)
    return longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", type=Path)
    parser.add_argument("--min-lines", type=int, default=MIN_LINES)
    args = parser.parse_args()
    templates = args.templates or sorted(ROOT.glob("services/*/template.yaml"))
    if len(templates) < 2:
        print(f"repetition: {len(templates)} service template(s), nothing to compare")
        return 0
    lines = {path: normalized(path, path.parent.name) for path in templates}
    skeleton = normalized(SKELETON, "__name__") if SKELETON.exists() else []
    shape = {path: shape_lines(lines[path], skeleton, args.min_lines) for path in templates}
    failures = 0
    for a, b in combinations(templates, 2):
        for start_a, start_b, length in shared_blocks(lines[a], lines[b], args.min_lines):
            if beyond_shape(lines[a], start_a, length, shape[a]) < args.min_lines:
                continue
            failures += 1
            first = next(text for number, text in lines[a] if number == start_a)
            print(f"FAIL {a.relative_to(ROOT) if a.is_absolute() else a}:{start_a} and "
                  f"{b.relative_to(ROOT) if b.is_absolute() else b}:{start_b}: {length} lines in common, "
                  f"from {first.strip()!r}")
    total = sum(len(v) for v in lines.values())
    print(f"repetition: {len(templates)} service templates ({total} lines without comments), "
          f"{failures} shared block(s) of {args.min_lines}+ lines")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
