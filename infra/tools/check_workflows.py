"""Rules for the GitHub workflows that actionlint does not know (infra/check.sh runs this).

    python infra/tools/check_workflows.py [--toolchain ROOT] WORKFLOW.yml...

Prints one line per broken rule, `FAIL <rule>: <file>: <what>`, and exits 1 if there is any.

Rules:
- workflow-run-guard: in a workflow triggered by `workflow_run`, every job that can run on it
  is guarded (its `if`, or that of a job it needs) by a push to main of this repository:
  `github.event.workflow_run.event == 'push'`, `...head_branch == 'main'` and
  `...head_repository.full_name == github.repository` — a fork's pull request from a branch
  named main triggers `workflow_run` too.
- persist-credentials: every `actions/checkout` step sets `persist-credentials: false`, so the
  job token is not left in .git/config for later steps.
- secrets-in-environment: secrets are read only by jobs bound to an `environment`, so they can
  be environment-scoped (one deploy role per environment).
- pip-hashes: every `pip install` installs `--require-hashes -r <file>`.
- pinned-toolchain: no workflow installs a floating Rust toolchain (`stable`, `beta`,
  `nightly`, `dtolnay/rust-toolchain`); rustup reads rust-toolchain.toml.
- toolchain-matches-rust-version (with --toolchain ROOT): rust-toolchain.toml's channel equals
  the workspace `rust-version`.
"""

import re
import sys
from pathlib import Path

import yaml

GUARD = (
    re.compile(r"github\.event\.workflow_run\.event\s*==\s*'push'"),
    re.compile(r"github\.event\.workflow_run\.head_branch\s*==\s*'main'"),
    re.compile(
        r"github\.event\.workflow_run\.head_repository\.full_name\s*==\s*github\.repository"
    ),
)
# Status functions that let a job run although a job it needs was skipped or failed.
UNCONDITIONAL = re.compile(r"\b(always|failure|cancelled)\(\)")
FLOATING_TOOLCHAIN = re.compile(
    r"rustup\s+(toolchain\s+install|default|install|update)\s+(stable|beta|nightly)\b"
    r"|dtolnay/rust-toolchain"
)


def triggers(workflow):
    # YAML 1.1 reads the key `on` as the boolean true.
    on = workflow.get("on", workflow.get(True, {}))
    if isinstance(on, str):
        return {on}
    return set(on or {})


def guarded(job_id, jobs, seen=()):
    job = jobs[job_id]
    condition = str(job.get("if", ""))
    if all(p.search(condition) for p in GUARD):
        return True
    if UNCONDITIONAL.search(condition):
        return False
    needs = job.get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    return any(n not in seen and guarded(n, jobs, seen + (job_id,)) for n in needs)


def check_workflow(path):
    failures = []
    workflow = yaml.safe_load(Path(path).read_text())
    jobs = workflow.get("jobs", {})
    if "workflow_run" in triggers(workflow):
        for job_id in jobs:
            if not guarded(job_id, jobs):
                failures.append(
                    ("workflow-run-guard", f"job {job_id} can run for a workflow_run that is "
                     "not a push to main of this repository")
                )
    for job_id, job in jobs.items():
        text = yaml.safe_dump(job)
        if "secrets." in text and "environment" not in job:
            failures.append(
                ("secrets-in-environment", f"job {job_id} reads secrets without an environment")
            )
        for step in job.get("steps", []):
            uses = str(step.get("uses", ""))
            name = step.get("name") or uses or str(step.get("run", ""))[:40]
            if uses.startswith("actions/checkout@"):
                if (step.get("with") or {}).get("persist-credentials") is not False:
                    failures.append(
                        ("persist-credentials",
                         f"job {job_id}: checkout without persist-credentials: false")
                    )
            run = str(step.get("run", ""))
            for line in run.splitlines():
                if re.search(r"\bpip3?\s+install\b", line) and not (
                    "--require-hashes" in line and re.search(r"\s-r\s", line)
                ):
                    failures.append(
                        ("pip-hashes", f"job {job_id}, step {name!r}: {line.strip()}")
                    )
            if FLOATING_TOOLCHAIN.search(run) or FLOATING_TOOLCHAIN.search(uses):
                failures.append(
                    ("pinned-toolchain", f"job {job_id}, step {name!r} installs a floating toolchain")
                )
    return failures


def check_toolchain(root):
    root = Path(root)
    toolchain = root / "rust-toolchain.toml"
    if not toolchain.exists():
        return [("toolchain-matches-rust-version", "no rust-toolchain.toml")]
    channel = re.search(r'^channel\s*=\s*"([^"]+)"', toolchain.read_text(), re.M)
    version = re.search(r'^rust-version\s*=\s*"([^"]+)"', (root / "Cargo.toml").read_text(), re.M)
    if not channel or not version or channel.group(1) != version.group(1):
        return [(
            "toolchain-matches-rust-version",
            f"rust-toolchain.toml channel {channel and channel.group(1)} != "
            f"Cargo.toml rust-version {version and version.group(1)}",
        )]
    return []


def main(argv):
    failures = []
    if len(argv) >= 2 and argv[0] == "--toolchain":
        failures += [(rule, f"{argv[1]}: {what}") for rule, what in check_toolchain(argv[1])]
        argv = argv[2:]
    if not argv and not failures:
        print("usage: check_workflows.py [--toolchain ROOT] WORKFLOW.yml...", file=sys.stderr)
        return 2
    for path in argv:
        failures += [(rule, f"{path}: {what}") for rule, what in check_workflow(path)]
    for rule, what in failures:
        print(f"FAIL {rule}: {what}")
    if not failures:
        print(f"ok: {len(argv)} workflow(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
