"""The shared Options directive: set, adjust per scope, refuse bad lines."""

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.errors import ConfigErrors
from axkit.config.options import has_option
from axkit.testing import load_config


class OptionsTests(SynchronousTestCase):
    def resolve(self, text, path):
        config = load_config(text)
        return config.servers[0].resolve(path).conf

    def test_plus_adjusts_outer_scope(self):
        text = """
            Options Indexes
            <Location /cgi-bin>
                Options +ExecCGI
            </Location>
        """
        inner = self.resolve(text, "/cgi-bin/x")
        self.assertTrue(has_option(inner, "ExecCGI"))
        self.assertTrue(has_option(inner, "Indexes"))
        outer = self.resolve(text, "/other")
        self.assertFalse(has_option(outer, "ExecCGI"))
        self.assertTrue(has_option(outer, "Indexes"))

    def test_bare_list_replaces_and_minus_removes(self):
        text = """
            Options Indexes ExecCGI
            <Location /a>
                Options FollowSymLinks
            </Location>
            <Location /b>
                Options -ExecCGI
            </Location>
        """
        a = self.resolve(text, "/a")
        self.assertFalse(has_option(a, "Indexes"))
        self.assertTrue(has_option(a, "FollowSymLinks"))
        b = self.resolve(text, "/b")
        self.assertFalse(has_option(b, "ExecCGI"))
        self.assertTrue(has_option(b, "Indexes"))

    def test_all_and_none(self):
        self.assertTrue(has_option(self.resolve("Options All", "/"), "ExecCGI"))
        self.assertFalse(has_option(self.resolve("Options All", "/"), "MultiViews"))
        text = "Options All\n<Location /x>\nOptions None\n</Location>\n"
        self.assertFalse(has_option(self.resolve(text, "/x"), "ExecCGI"))

    def test_default_is_followsymlinks_only(self):
        conf = self.resolve("", "/")
        self.assertFalse(has_option(conf, "ExecCGI"))
        self.assertFalse(has_option(conf, "Indexes"))
        self.assertTrue(has_option(conf, "FollowSymLinks"))

    def test_bare_list_drops_followsymlinks_plus_keeps_it(self):
        # Apache 2.4: "Options Indexes" replaces the default FollowSymLinks.
        self.assertFalse(has_option(self.resolve("Options Indexes", "/"), "FollowSymLinks"))
        self.assertTrue(has_option(self.resolve("Options +Indexes", "/"), "FollowSymLinks"))
        self.assertFalse(has_option(self.resolve("Options -FollowSymLinks", "/"), "FollowSymLinks"))
        self.assertFalse(has_option(self.resolve("Options None", "/"), "FollowSymLinks"))
        text = "Options -FollowSymLinks\n<Location /x>\nOptions +FollowSymLinks\n</Location>\n"
        self.assertTrue(has_option(self.resolve(text, "/x/y"), "FollowSymLinks"))
        self.assertFalse(has_option(self.resolve(text, "/y"), "FollowSymLinks"))

    def test_unknown_option_is_refused_with_line(self):
        e = self.assertRaises(ConfigErrors, load_config, "\nOptions +ExecCgi Bogus\n")
        self.assertIn(":2:", str(e))
        self.assertIn("unknown option 'Bogus'", str(e))

    def test_mixing_signed_and_bare_is_refused(self):
        e = self.assertRaises(ConfigErrors, load_config, "Options +ExecCGI Indexes\n")
        self.assertIn("either all options", str(e))
