"""Plugins are found by name through Twisted's plugin system, or by dotted path."""

import os
import shutil
import sys
import tempfile
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.errors import ConfigErrors
from axkit.discovery import PluginNotFound, discover, find_plugin
from axkit.testing import MemorySite


class DiscoveryTests(SynchronousTestCase):
    def test_bundled_plugins_are_discovered(self):
        names = set(discover())
        self.assertTrue(
            {"uri_to_file", "mime_map", "serve_file", "serve_dir", "access_log", "error_log"}
            <= names
        )
        self.assertNotIn("stderr_log", names)  # 0.1.0 never shipped it

    def test_a_throwaway_dropin_on_sys_path_is_found_by_name_and_runs(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        os.makedirs(os.path.join(root, "greeter_pkg"))
        os.makedirs(os.path.join(root, "twisted", "plugins"))  # no __init__.py, ever
        with open(os.path.join(root, "greeter_pkg", "__init__.py"), "w") as f:
            f.write(
                textwrap.dedent("""
                from axkit.config import Directive, string
                from axkit.hooks import DONE

                class Greeter:
                    name = "greeter"
                    directives = [Directive("Greeting", string, default="hi")]

                    def hook_response(self, request, conf):
                        request.send(200, conf.greeting, "text/plain")
                        return DONE
            """)
            )
        with open(os.path.join(root, "twisted", "plugins", "greeter_dropin.py"), "w") as f:
            f.write(
                "from axkit.dropin import AxKitPlugin\n"
                "greeter = AxKitPlugin('greeter', 'greeter_pkg.Greeter', 'Greets.')\n"
            )
        sys.path.insert(0, root)
        self.addCleanup(sys.path.remove, root)
        self.addCleanup(sys.modules.pop, "greeter_pkg", None)
        import twisted.plugins

        twisted.plugins.__path__.append(os.path.join(root, "twisted", "plugins"))
        self.addCleanup(twisted.plugins.__path__.remove, os.path.join(root, "twisted", "plugins"))
        self.assertIn("greeter", discover())
        site = MemorySite("Plugin greeter\nGreeting 'hello there'\n")
        self.addCleanup(site.close)
        self.assertEqual(site.get("/").body, b"hello there")

    def test_dotted_path_plugin(self):
        cls = find_plugin("tests.hookplugins.Hello", known={})
        self.assertEqual(cls.name, "hello")

    def test_unknown_names_are_reported(self):
        with self.assertRaises(PluginNotFound) as cm:
            find_plugin("nosuch", known={})
        self.assertIn("unknown plugin 'nosuch'", str(cm.exception))
        with self.assertRaises(PluginNotFound) as cm:
            find_plugin("nosuch_module.Thing", known={})
        self.assertIn("cannot import plugin 'nosuch_module.Thing'", str(cm.exception))

    def test_two_plugins_claiming_one_directive_is_a_load_error(self):
        with self.assertRaises(ConfigErrors) as cm:
            MemorySite(
                "Plugin tests.test_foundation_discovery.ClaimsDirectoryIndex\nPlugin uri_to_file\n"
            )
        self.assertIn("directive 'DirectoryIndex' is declared by both", str(cm.exception))


class ClaimsDirectoryIndex:
    from axkit.config import Directive as _D
    from axkit.config import string as _s

    name = "claimer"
    directives = [_D("DirectoryIndex", _s)]
