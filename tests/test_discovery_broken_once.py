"""A third-party dropin that fails to import: twistd prints its traceback
once (its own scan), and axkit's own scans add none -- then axkit's one
clear message where it matters (a config naming the plugin)."""

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.test_config_tools import twistd


class BrokenDropinOnceTests(SynchronousTestCase):
    def setUp(self):
        self.extra = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.extra, "twisted", "plugins"))
        with open(
            os.path.join(self.extra, "twisted", "plugins", "broken_once_dropin.py"), "w"
        ) as f:
            f.write("import no_such_module_for_axkit_once\n")
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)

    def check(self, text):
        with open(os.path.join(self.folder, "site.conf"), "w") as f:
            f.write(f"Listen unix:{self.folder}/axkit.sock\n{text}")
        return twistd("--config", "site.conf", "--check", cwd=self.folder, extra_path=[self.extra])

    def test_a_config_naming_it(self):
        result = self.check("Plugin broken_once\n")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.count("Traceback (most recent call last)"), 1, result.stderr)
        messages = [line for line in result.stderr.splitlines() if line.startswith("site.conf:2:")]
        self.assertEqual(len(messages), 1, result.stderr)
        self.assertIn(
            "broken_once_dropin.py: ModuleNotFoundError: No module named "
            "'no_such_module_for_axkit_once'",
            messages[0],
        )

    def test_a_config_not_naming_it(self):
        result = self.check("Plugin uri_to_file\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.count("Traceback (most recent call last)"), 1, result.stderr)
