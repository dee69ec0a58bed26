"""docs/plugins.md, followed literally: the files on that page are written to
an empty folder, and the package is discovered, configured, listed, tested
with its own trial tests, and served by a real twistd."""

import os
import re
import subprocess
import sys
import time
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import MemorySite, TwistdProcess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "plugins.md")


def doc_text():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def doc_files():
    """{relative path: content} of every "File: `path`" code block."""
    files = {}
    pattern = re.compile(r"^File: `([^`]+)`\n\n```[a-z]*\n(.*?)^```\n", re.S | re.M)
    for path, body in pattern.findall(doc_text()):
        files[path] = body
    return files


def build_package(folder):
    for rel, body in doc_files().items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(body)
    return os.path.join(folder, "axkit-greeting")


def run(args, cwd, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([".", ROOT])  # PYTHONPATH=. and axkit
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class ExternalPackageTests(SynchronousTestCase):
    def setUp(self):
        self.package = build_package(os.path.abspath(self.mktemp()))

    def test_the_page_has_the_whole_package(self):
        self.assertEqual(
            sorted(doc_files()),
            [
                "axkit-greeting/axkit_greeting/__init__.py",
                "axkit-greeting/axkit_greeting/greeting.py",
                "axkit-greeting/axkit_greeting/test/__init__.py",
                "axkit-greeting/axkit_greeting/test/test_greeting.py",
                "axkit-greeting/pyproject.toml",
                "axkit-greeting/site.conf",
                "axkit-greeting/twisted/plugins/axkit_greeting.py",
            ],
        )
        self.assertFalse(os.path.exists(os.path.join(self.package, "twisted", "__init__.py")))
        self.assertFalse(
            os.path.exists(os.path.join(self.package, "twisted", "plugins", "__init__.py"))
        )

    def test_its_own_trial_tests_pass(self):
        result = run([sys.executable, "-m", "twisted.trial", "axkit_greeting"], self.package)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("PASSED (successes=6)", result.stdout)

    def test_listed_as_the_page_shows(self):
        result = run(TWISTD + ["--pidfile=", "axkit", "--list-plugins"], self.package)
        self.assertEqual(result.returncode, 0, result.stderr)
        shown = doc_text().split("prints, among the bundled plugins:\n\n", 1)[1]
        shown = shown.split("\n\n", 1)[0]
        expected = [line[4:] for line in shown.splitlines()]
        listing = result.stdout.splitlines()
        start = listing.index("greeting")
        actual = listing[start : start + len(expected)]
        for want, got in zip(expected, actual, strict=False):
            if want.strip().startswith("distribution:"):
                self.assertEqual(
                    got,
                    "    distribution: not from an installed distribution "
                    f"({os.path.realpath(self.package)}/axkit_greeting/"
                    "greeting.py)",
                )
            else:
                self.assertEqual(got, want)

    def test_check_and_the_typo_example(self):
        result = run(
            TWISTD + ["--pidfile=", "axkit", "--config", "site.conf", "--check"], self.package
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.package, "site.conf"), "a") as f:
            f.write("GreetingDelay soon\n")
        result = run(
            TWISTD + ["--pidfile=", "axkit", "--config", "site.conf", "--check"], self.package
        )
        self.assertEqual(result.returncode, 1)
        shown = (
            doc_text()
            .split("$ PYTHONPATH=. twistd axkit --config site.conf --check\n", 1)[1]
            .split("\n\n", 1)[0]
        )
        self.assertEqual(result.stderr.splitlines(), [line[4:] for line in shown.splitlines()])

    def test_served_by_twistd(self):
        conf = os.path.join(self.package, "site.conf")
        with open(conf) as f:
            text = f.read()
        # The one change: an ephemeral port instead of 8080 (tests share the machine).
        with open(conf, "w") as f:
            f.write(text.replace("Listen tcp:8080:", "Listen tcp:0:"))
        server = TwistdProcess(conf, extra_path=[self.package])
        self.addCleanup(server.stop)
        base = f"http://127.0.0.1:{server.port}"
        request = urllib.request.Request(base + "/", headers={"X-Name": "Ada"})
        with urllib.request.urlopen(request, timeout=10) as r:
            self.assertEqual(r.read(), b"Hello, Ada!\n")
        started = time.monotonic()
        with urllib.request.urlopen(base + "/slow/", timeout=10) as r:
            self.assertEqual(r.read(), b"Hello, stranger!\n")
        self.assertGreaterEqual(time.monotonic() - started, 1.9)  # GreetingDelay 2s

    def test_discovered_and_configured_in_process(self):
        import twisted.plugins
        from axkit import discovery

        self.patch(sys, "path", [self.package] + sys.path)
        self.patch(
            twisted.plugins,
            "__path__",
            list(twisted.plugins.__path__) + [os.path.join(self.package, "twisted", "plugins")],
        )
        self.addCleanup(_forget_modules, "axkit_greeting")
        known = discovery.discover()
        self.assertIn("greeting", known)
        self.assertEqual(known["greeting"].module, "axkit_greeting.greeting.Greeting")
        site = MemorySite("Plugin greeting\nGreeting Howdy\n")
        self.addCleanup(site.close)
        response = site.get("/", headers=[("X-Name", "Tex")])
        self.assertEqual(response.body, b"Howdy, Tex!\n")

    def test_pyproject_ships_the_dropin(self):
        import tomllib

        with open(os.path.join(self.package, "pyproject.toml"), "rb") as f:
            project = tomllib.load(f)
        self.assertIn("twisted.plugins", project["tool"]["setuptools"]["packages"])
        # What goes into the wheel is what setuptools' build_py collects.
        result = run(
            [
                sys.executable,
                "-c",
                "import setuptools; setuptools.setup()",
                "-q",
                "build_py",
                "-d",
                "build/lib",
            ],
            self.package,
        )
        if result.returncode != 0 and "No module named 'setuptools'" in result.stderr:
            self.skipTest("setuptools is not installed")
        self.assertEqual(result.returncode, 0, result.stderr)
        built = os.path.join(self.package, "build", "lib")
        self.assertTrue(
            os.path.exists(os.path.join(built, "twisted", "plugins", "axkit_greeting.py"))
        )
        self.assertFalse(os.path.exists(os.path.join(built, "twisted", "plugins", "__init__.py")))
        self.assertFalse(os.path.exists(os.path.join(built, "twisted", "__init__.py")))
        self.assertTrue(os.path.exists(os.path.join(built, "axkit_greeting", "greeting.py")))
        self.assertTrue(
            os.path.exists(os.path.join(built, "axkit_greeting", "test", "test_greeting.py"))
        )


def _forget_modules(prefix):
    for name in list(sys.modules):
        if (
            name == prefix
            or name.startswith(prefix + ".")
            or name == "twisted.plugins.axkit_greeting"
        ):
            del sys.modules[name]
