"""--dump-config writes values back as a config says them: a Header line
without a stray "Off" (its `always` flag), several lines of a directive
apart, and Options as the options in force (FollowSymLinks by default),
not "-"."""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.loader import load_file
from axkit.introspect import dump_config_text
from axkit.testing import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def value_of(text, name):
    match = re.search(rf"^  {name} +(.*?)   # ", text, re.M)
    return match.group(1) if match else None


class DumpValuesTests(SynchronousTestCase):
    def test_the_example_sites_header(self):
        # conf.d/static.conf: Header set X-Content-Type-Options nosniff
        text = dump_config_text(load_file(os.path.join(ROOT, "site.conf")))
        self.assertEqual(value_of(text, "Header"), "set X-Content-Type-Options nosniff")

    def test_header_lines(self):
        config = load_config(
            "Plugin headers\n"
            "Header set X-A 1\n"
            'Header always set Cache-Control "public, max-age=60"\n'
            "Header unset X-Powered-By\n"
        )
        self.assertEqual(
            value_of(dump_config_text(config), "Header"),
            'set X-A 1; always set Cache-Control "public, max-age=60"; unset X-Powered-By',
        )

    def test_options_in_force(self):
        config = load_config("<Location /x>\nOptions +ExecCGI -FollowSymLinks\n</Location>\n")
        self.assertEqual(value_of(dump_config_text(config), "Options"), "FollowSymLinks")
        self.assertEqual(value_of(dump_config_text(config, path="/x/a"), "Options"), "ExecCGI")
        config = load_config("Options None\n")
        self.assertEqual(value_of(dump_config_text(config), "Options"), "None")
