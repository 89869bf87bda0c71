#!/usr/bin/env python3
"""Which stacks a change must deploy, in deployment order: the platform first, then services.

A stack is deployed when a file it is built from changed since BASE, the last deployed commit
(git diff BASE...HEAD: every commit since, not only the last one):

- platform (infra/platform.yaml): the template, a module (infra/modules/), its function
  (tools/deployed/deploy-smoke/), the shared crates it links (shared/), the workspace's build files
  (Cargo.toml, Cargo.lock, rust-toolchain.toml), infra/samconfig.toml;
- a service (services/<name>/template.yaml, found): its folder, a module, the shared crates,
  the workspace's build files, infra/samconfig.toml.

Anything else (docs, tests of tools, other tools) deploys nothing. A BASE this clone does not
know (its history not fetched, or nothing deployed yet) deploys every stack.

    .venv/bin/python infra/tools/changed_stacks.py BASE [HEAD]   # prints e.g. "platform orders"
    .venv/bin/python infra/tools/changed_stacks.py --all          # every stack
    .venv/bin/python infra/tools/changed_stacks.py --self-check   # the rules on made-up changes
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What every stack is built from besides its own folder.
SHARED = ("infra/modules/", "shared/", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "infra/samconfig.toml")
PLATFORM = ("infra/platform.yaml", "tools/deployed/deploy-smoke/")


def services(root: Path = ROOT) -> list:
    return sorted(p.parent.name for p in root.glob("services/*/template.yaml"))


def stacks_for(changed: list, names: list) -> list:
    """The stacks the changed paths deploy, platform first, services in name order."""
    def touched(prefixes) -> bool:
        return any(path == p or path.startswith(p) for path in changed for p in prefixes)

    out = ["platform"] if touched(PLATFORM + SHARED) else []
    out += [name for name in names if touched((f"services/{name}/",) + SHARED)]
    return out


def self_check() -> list:
    names = ["notify", "orders", "payments"]
    cases = [
        (["docs/deploy.md", "README.md"], []),
        (["services/orders/src/domain/order.rs"], ["orders"]),
        (["services/orders/template.yaml", "services/notify/src/lib.rs"], ["notify", "orders"]),
        (["infra/platform.yaml"], ["platform"]),
        (["tools/deployed/deploy-smoke/src/lib.rs"], ["platform"]),
        (["shared/kit/src/relay.rs"], ["platform", "notify", "orders", "payments"]),
        (["Cargo.lock"], ["platform", "notify", "orders", "payments"]),
        (["infra/modules/function.yaml"], ["platform", "notify", "orders", "payments"]),
        (["services/ordersx/template.yaml"], []),
        (["tools/local/local-stack/src/stack.rs", "infra/check.sh"], []),
    ]
    return [f"{changed} deploys {got}, not {want}"
            for changed, want in cases if (got := stacks_for(changed, names)) != want]


def main(argv: list) -> int:
    if argv[:1] == ["--self-check"]:
        problems = self_check()
        for p in problems:
            print(f"FAIL {p}")
        print(f"changed_stacks: {len(problems)} problem(s)")
        return 1 if problems else 0
    names = services()
    if argv[:1] == ["--all"]:
        print(" ".join(["platform", *names]))
        return 0
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    base, head = argv[0], argv[1] if len(argv) == 2 else "HEAD"
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
                           cwd=ROOT, capture_output=True, text=True)
    if known.returncode != 0:
        print(f"changed_stacks: {base} is not a commit of this clone: every stack", file=sys.stderr)
        print(" ".join(["platform", *names]))
        return 0
    changed = subprocess.run(["git", "diff", "--name-only", f"{base}...{head}"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    print(" ".join(stacks_for(changed, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
