"""`tools/setup.sh --light` (what `make run` calls) installs only what running the application
needs, the venv with moto (tools/requirements-run.txt), while the full setup installs every
tool the tests call (tools/requirements.txt). A fake Python and pip record what is installed.

Run by tools/testing/test.sh (`make test`), or alone: .venv/bin/python -m unittest discover -s tools/testing/tests
"""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# `python -m venv DIR` makes DIR/bin/python and DIR/bin/pip; that pip logs its arguments.
FAKE_PYTHON = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    set -euo pipefail
    if [ "$1 $2" != "-m venv" ]; then echo "fake python: unexpected $*" >&2; exit 2; fi
    mkdir -p "$3/bin"
    printf '#!/usr/bin/env bash\\necho "$*" >> "%s"\\n' "$PIP_LOG" > "$3/bin/pip"
    printf '#!/usr/bin/env bash\\nexit 0\\n' > "$3/bin/python"
    chmod +x "$3/bin/pip" "$3/bin/python"
    """
)


class SetupTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="setup-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "tools"))
        for name in os.listdir(os.path.join(ROOT, "tools")):
            if name == "setup.sh" or name.startswith("requirements"):
                shutil.copy(os.path.join(ROOT, "tools", name), os.path.join(self.dir, "tools", name))
        self.python = os.path.join(self.dir, "fake-python")
        with open(self.python, "w") as f:
            f.write(FAKE_PYTHON)
        os.chmod(self.python, 0o755)
        self.log = os.path.join(self.dir, "pip.log")

    def setup(self, *args):
        env = dict(os.environ, PYTHON=self.python, PIP_LOG=self.log)
        run = subprocess.run(
            ["bash", "tools/setup.sh", *args], cwd=self.dir, env=env, capture_output=True, text=True
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        return run

    def installed(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [line.split() for line in f]

    def test_the_light_setup_installs_only_what_running_the_application_needs(self):
        self.setup("--light")
        files = [args[args.index("-r") + 1] for args in self.installed()]
        self.assertEqual(files, ["tools/requirements-run.txt"])
        with open(os.path.join(self.dir, "tools", "requirements-run.txt")) as f:
            pins = [l.split("==")[0] for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual(pins, ["moto[server]"], "make run needs moto and nothing else")

    def test_a_second_light_setup_installs_nothing(self):
        self.setup("--light")
        self.setup("--light")
        self.assertEqual(len(self.installed()), 1)

    def test_the_full_requirements_include_the_run_requirements(self):
        with open(os.path.join(ROOT, "tools", "requirements.txt")) as f:
            lines = [l.strip() for l in f]
        self.assertIn("-r requirements-run.txt", lines)


if __name__ == "__main__":
    unittest.main()
