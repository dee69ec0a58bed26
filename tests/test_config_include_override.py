"""A directive given again in one scope where one of the lines comes from
an Include (``AccessLog off`` after ``Include conf.d/*.conf``): as in
Apache, the later line wins, and ``--check`` prints a warning naming both
lines.  Twice in one file is still refused (a slip, not an override)."""

import os
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.errors import ConfigErrors
from axkit.config.loader import load_file
from axkit.introspect import dump_config_text
from tests.test_config_tools import twistd


class IncludeOverrideTests(SynchronousTestCase):
    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.folder, "conf.d"))

    def write(self, name, text):
        path = os.path.join(self.folder, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def site(self, main):
        self.write(
            "conf.d/logging.conf",
            """\
            Plugin access_log
            AccessLog stdout
            KeepAliveTimeout 5s
        """,
        )
        return self.write("site.conf", main)

    def test_the_later_line_wins_with_a_warning(self):
        path = self.site(
            """\
            Include conf.d/*.conf
            AccessLog off
        """
        )
        config = load_file(path)
        self.assertEqual(config.servers[0].base.conf.access_log[0], "off")
        [warning] = config.warnings
        # (An included file is named relative to the current folder.)
        self.assertRegex(
            str(warning),
            r"^\S*site\.conf:2: warning: AccessLog is given again in this scope "
            r"\(first at \S*conf\.d/logging\.conf:2\): this line wins$",
        )
        # --dump-config names the line in effect.
        self.assertRegex(dump_config_text(config), r"AccessLog\s+off.*# \S*site\.conf:2 ")

    def test_an_include_after_the_line_wins_too(self):
        path = self.site(
            """\
            KeepAliveTimeout 30s
            Include conf.d/*.conf
        """
        )
        config = load_file(path)
        self.assertEqual(config.servers[0].base.conf.keep_alive_timeout, 5)
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("logging.conf:3: warning: KeepAliveTimeout", str(config.warnings[0]))

    def test_twice_in_one_file_is_still_an_error(self):
        path = self.site(
            """\
            AccessLog off
            AccessLog stdout
            Plugin access_log
        """
        )
        e = self.assertRaises(ConfigErrors, load_file, path)
        self.assertIn("site.conf:2: AccessLog is given twice in this scope", str(e))

    def test_check_prints_the_warning(self):
        self.site(
            f"""\
            Listen unix:{self.folder}/axkit.sock
            Include conf.d/*.conf
            AccessLog off
        """
        )
        result = twistd("--config", "site.conf", "--check", cwd=self.folder)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("site.conf: config OK", result.stdout)
        self.assertIn(
            "site.conf:3: warning: AccessLog is given again in this scope "
            "(first at conf.d/logging.conf:2): this line wins",
            result.stderr,
        )
