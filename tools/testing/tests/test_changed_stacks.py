"""infra/tools/changed_stacks.py deploys what changed since the last deployed commit: a commit
touching one service's folder plans that service only; the platform's inputs plan the platform;
shared code and the workspace's build files plan every stack; the platform always comes first;
a base this clone does not know (history not fetched, or never deployed) plans everything. Each
case is a real git history in a temporary repository, with a copy of the script. And
infra/deploy.sh (`make deploy`) deploys them in that order, one stack each (DRY_RUN=1).

Run by tools/testing/test.sh (`make test`), or alone: .venv/bin/python -m unittest discover -s tools/testing/tests
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAN = os.path.join(ROOT, "infra", "tools", "changed_stacks.py")


class DeployPlanTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp(prefix="deploy-plan-")
        self.addCleanup(shutil.rmtree, self.repo, ignore_errors=True)
        self.git("init", "-q", "-b", "main")
        for path in [
            "infra/platform.yaml",
            "infra/modules/function.yaml",
            "infra/samconfig.toml",
            "services/orders/template.yaml",
            "services/orders/src/lib.rs",
            "services/payments/template.yaml",
            "services/notify/template.yaml",
            "services/draft/src/lib.rs",
            "shared/kit/src/lib.rs",
            "tools/deployed/deploy-smoke/src/main.rs",
            "docs/deploy.md",
            "Cargo.lock",
            "Cargo.toml",
            "rust-toolchain.toml",
        ]:
            self.write(path, "v1\n")
        os.makedirs(os.path.join(self.repo, "infra", "tools"), exist_ok=True)
        shutil.copy(PLAN, os.path.join(self.repo, "infra", "tools"))
        self.base = self.commit("first")

    def git(self, *args):
        return subprocess.run(
            ["git", "-C", self.repo, "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def write(self, path, text):
        full = os.path.join(self.repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def commit(self, message):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def plan(self, *args):
        run = subprocess.run(
            [sys.executable, os.path.join(self.repo, "infra", "tools", "changed_stacks.py"), *args],
            capture_output=True,
            text=True,
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout.split()

    def changed(self, *paths):
        for path in paths:
            self.write(path, "v2\n")
        self.commit("change")
        return self.plan(self.base)

    def test_a_first_install_deploys_the_platform_then_every_service_with_a_template(self):
        self.assertEqual(self.plan("--all"), ["platform", "notify", "orders", "payments"])

    def test_a_change_to_one_service_deploys_that_service_only(self):
        self.assertEqual(self.changed("services/orders/src/lib.rs"), ["orders"])

    def test_a_change_to_the_platform_deploys_the_platform_only(self):
        self.assertEqual(self.changed("infra/platform.yaml"), ["platform"])
        self.assertEqual(self.plan(self.base, "HEAD"), ["platform"])

    def test_the_hook_is_deployed_with_the_platform(self):
        self.assertEqual(self.changed("tools/deployed/deploy-smoke/src/main.rs"), ["platform"])

    def test_a_module_deploys_the_platform_first_then_every_service(self):
        self.assertEqual(
            self.changed("infra/modules/function.yaml"), ["platform", "notify", "orders", "payments"]
        )

    def test_shared_code_or_the_workspace_build_files_deploy_everything(self):
        everything = ["platform", "notify", "orders", "payments"]
        for path in ["shared/kit/src/lib.rs", "Cargo.lock", "Cargo.toml", "rust-toolchain.toml"]:
            self.base = self.git("rev-parse", "HEAD")
            self.assertEqual(self.changed(path), everything, path)

    def test_every_commit_since_the_last_deploy_counts(self):
        self.write("services/orders/src/lib.rs", "v2\n")
        self.commit("orders")
        self.assertEqual(self.changed("services/notify/template.yaml"), ["notify", "orders"])

    def test_docs_deploy_nothing(self):
        self.assertEqual(self.changed("docs/deploy.md"), [])

    def test_a_service_without_a_template_is_not_deployed(self):
        self.assertEqual(self.changed("services/draft/src/lib.rs"), [])

    def test_a_new_service_is_deployed(self):
        self.assertEqual(self.changed("services/stock/template.yaml"), ["stock"])

    def test_an_unknown_base_deploys_everything(self):
        self.assertEqual(
            self.plan("0" * 40), ["platform", "notify", "orders", "payments"]
        )


if __name__ == "__main__":
    unittest.main()


class DeployScriptTest(unittest.TestCase):
    """infra/deploy.sh (`make deploy STAGE=…`) on a copy of the layout, with DRY_RUN=1."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="deploy-sh-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        os.makedirs(os.path.join(self.root, "infra", "tools"))
        shutil.copy(os.path.join(ROOT, "infra", "deploy.sh"), os.path.join(self.root, "infra"))
        shutil.copy(PLAN, os.path.join(self.root, "infra", "tools"))
        shutil.copy(os.path.join(ROOT, "infra", "samconfig.toml"), os.path.join(self.root, "infra"))
        for path in ["infra/platform.yaml"] + [
            f"services/{s}/template.yaml" for s in ("orders", "payments", "notify")
        ]:
            os.makedirs(os.path.dirname(os.path.join(self.root, path)), exist_ok=True)
            open(os.path.join(self.root, path), "w").close()

    def deploy(self, *args, code=0, **env):
        run = subprocess.run(
            ["bash", "infra/deploy.sh", *args],
            cwd=self.root,
            env=dict(os.environ, DRY_RUN="1", PYTHON=sys.executable, **env),
            capture_output=True,
            text=True,
        )
        self.assertEqual(run.returncode, code, run.stdout + run.stderr)
        return run

    def commands(self, run):
        return [line[2:].split() for line in run.stdout.splitlines() if line.startswith("+ ")]

    def test_a_first_install_deploys_the_platform_before_every_service_each_from_its_build(self):
        commands = self.commands(self.deploy("all", "staging"))
        builds = [c[c.index("--template-file") + 1] for c in commands if c[1] == "build"]
        deploys = [c[c.index("--stack-name") + 1] for c in commands if c[1] == "deploy"]
        self.assertEqual(
            builds,
            [
                "infra/platform.yaml",
                "services/notify/template.yaml",
                "services/orders/template.yaml",
                "services/payments/template.yaml",
            ],
        )
        self.assertEqual(
            deploys, ["shop-staging", "shop-staging-notify", "shop-staging-orders", "shop-staging-payments"]
        )
        first_service = next(i for i, c in enumerate(commands) if "services/" in " ".join(c))
        platform_deploy = next(i for i, c in enumerate(commands) if c[1] == "deploy")
        self.assertLess(platform_deploy, first_service, "the platform is deployed before any service is built")
        for c in commands:
            self.assertEqual(c[c.index("--config-env") + 1], "staging")

    def test_the_platform_named_after_a_service_still_deploys_first(self):
        commands = self.commands(self.deploy("deploy", "dev", "orders", "platform"))
        self.assertEqual([c[c.index("--stack-name") + 1] for c in commands], ["shop-dev", "shop-dev-orders"])

    def test_one_service_deploys_on_its_own_from_its_own_build(self):
        commands = self.commands(self.deploy("deploy", "prod", "orders"))
        self.assertEqual(len(commands), 1)
        c = commands[0]
        self.assertTrue(c[c.index("--template-file") + 1].endswith(".aws-sam/orders/template.yaml"), c)
        self.assertEqual(c[c.index("--stack-name") + 1], "shop-prod-orders")

    def test_the_app_name_comes_from_the_stages_parameter_overrides(self):
        config = os.path.join(self.root, "infra", "samconfig.toml")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("AppName=shop", "AppName=acme"))
        self.assertEqual(self.deploy("stack-name", "dev", "orders").stdout.strip(), "acme-dev-orders")

    def test_an_unknown_stack_or_stage_is_refused(self):
        self.assertIn("no stack stock", self.deploy("build", "dev", "stock", code=2).stderr)
        self.assertIn("no [qa.deploy.parameters]", self.deploy("build", "qa", code=2).stderr)
