#!/usr/bin/env python3
"""Creates a new service in the house shape: `make new-service NAME=widgets`.

Copies tools/local/new-service/skeleton/ to services/NAME/, with `__name__`, `__Name__` and
`__NAME__` in paths and texts replaced by the name, its PascalCase and its UPPER_CASE. The
service is complete: an HTTP function with one route (GET /v1/NAME), an events consumer of
OrderConfirmed, the shared outbox relay, its table, inbox (rule, queue, DLQs), alarms, OpenAPI
part, tests and README. Nothing outside services/NAME/ is edited: the workspace, the Makefile,
the local stack, the checks, the bench and the deploy scripts find services by their folder.
tools/local/new-service/test.sh (in `make test`) proves it on a copy of the repository.

Exits 2 with a message on a name that cannot be a service.
"""
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SKELETON = Path(__file__).resolve().parent / "skeleton"
NAME_RULE = re.compile(r"^[a-z][a-z0-9]{1,19}$")
# Names the platform or the shared code already use for something else.
RESERVED = {"platform", "shared", "kit", "testkit", "outbox", "relay", "infra", "tools", "services"}


def problem(name: str, root: Path) -> str | None:
    """Why `name` cannot be a new service of the repository at `root`, or None."""
    if not NAME_RULE.match(name):
        return f"{name!r}: a service name is 2 to 20 lowercase letters and digits, starting with a letter"
    if name in RESERVED:
        return f"{name!r} is reserved"
    if (root / "services" / name).exists():
        return f"services/{name} already exists"
    packages = set()
    for manifest in root.glob("**/Cargo.toml"):
        if "target" in manifest.parts or ".local" in manifest.parts:
            continue
        found = re.search(r'^name\s*=\s*"([^"]+)"', manifest.read_text(), re.M)
        if found:
            packages.add(found.group(1))
    if name in packages:
        return f"{name!r} is already the name of a package of the workspace"
    return None


def substitute(text: str, name: str) -> str:
    return (
        text.replace("__NAME__", name.upper())
        .replace("__Name__", name[0].upper() + name[1:])
        .replace("__name__", name)
    )


def generate(name: str, root: Path = ROOT) -> Path:
    target = root / "services" / name
    for source in sorted(SKELETON.rglob("*")):
        relative = Path(substitute(str(source.relative_to(SKELETON)), name))
        destination = target / relative
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(substitute(source.read_text(), name))
        shutil.copymode(source, destination)
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make new-service NAME=<name>", file=sys.stderr)
        return 2
    name = argv[0]
    why = problem(name, ROOT)
    if why:
        print(f"new-service: {why}", file=sys.stderr)
        return 2
    target = generate(name)
    print(f"new-service: created {target.relative_to(ROOT)}/ (see its README.md); `make run` serves GET /v1/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
