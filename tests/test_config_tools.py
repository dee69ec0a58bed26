"""twistd axkit --check, --list-plugins, --dump-config (as a user runs them)."""

import os
import subprocess
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from axkit.introspect import dump_config_text, list_plugins_text
from axkit.testing import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def twistd(*args, cwd=None, extra_path=()):
    """Run `twistd axkit ARGS` (not -n: these options must exit before any fork)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *extra_path])
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--pidfile=",
            "axkit",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


class CheckTests(SynchronousTestCase):
    def write(self, folder, name, text):
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def test_good_config_exits_0_and_listens_nowhere(self):
        folder = os.path.abspath(self.mktemp())
        sock = os.path.join(folder, "axkit.sock")
        self.write(
            folder,
            "site.conf",
            f"""
            Listen unix:{sock}
            Plugin uri_to_file
            Plugin serve_file
            DocumentRoot .
        """,
        )
        result = twistd("--config", "site.conf", "--check", cwd=folder)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("site.conf: config OK", result.stdout)
        self.assertFalse(os.path.exists(sock))

    def test_bad_config_lists_every_error_and_exits_1(self):
        folder = os.path.abspath(self.mktemp())
        sock = os.path.join(folder, "axkit.sock")
        self.write(folder, "conf.d/extra.conf", "KeepAliveTimeout forever\n")
        self.write(
            folder,
            "site.conf",
            f"""\
            Listen unix:{sock}
            Plugin uri_to_file
            DirectoryIndex
            Include conf.d/*.conf
            <Location docs>
            </Location>
            Frobnicate yes
        """,
        )
        result = twistd("--config", "site.conf", "--check", cwd=folder)
        self.assertEqual(result.returncode, 1)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(
            lines[:4],
            [
                "conf.d/extra.conf:1: expected a duration like 30s, 500ms, 5m or 1h, got 'forever'",
                "site.conf:3: DirectoryIndex takes at least 1 argument, got 0 "
                "(usage: DirectoryIndex STRING...)",
                "site.conf:5: <Location> path must start with '/', got 'docs'",
                'site.conf:7: unknown directive "Frobnicate"',
            ],
        )
        self.assertEqual(lines[4], "axkit: config has 4 errors; not starting")
        self.assertFalse(os.path.exists(sock))

    def test_missing_config_file(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        result = twistd("--config", "nope.conf", "--check", cwd=folder)
        self.assertEqual(result.returncode, 1)
        self.assertIn("nope.conf: cannot read config: No such file or directory", result.stderr)
        self.assertNotIn(":0:", result.stderr)


class ListPluginsTests(SynchronousTestCase):
    def test_lists_bundled_plugins_with_hooks_and_directive_docs(self):
        text = list_plugins_text()
        section = text.split("\naccess_log\n", 1)[1].split("\n\n", 1)[0]
        self.assertIn("common, combined, JSON lines or a custom LogFormat", section)
        self.assertIn("hooks: connect, response_sent", section)
        self.assertIn("AccessLog stdout|stderr|off|PATH [FORMAT]", section)
        self.assertIn("LogFormat FORMAT NICKNAME", section)
        self.assertIn("Escapes are Apache's", section)
        self.assertIn("distribution:", section)
        self.assertIn("TraceHooks On|Off", text)  # core directives too

    def test_command_line_and_broken_dropin(self):
        extra = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(extra, "twisted", "plugins"))
        with open(os.path.join(extra, "twisted", "plugins", "broken_axkit_dropin.py"), "w") as f:
            f.write("import no_such_module_for_axkit_tests\n")
        result = twistd("--list-plugins", extra_path=[extra])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("\nuri_to_file\n", result.stdout)
        self.assertIn("twisted.plugins.broken_axkit_dropin", result.stdout)
        self.assertIn(
            "BROKEN: ModuleNotFoundError: No module named 'no_such_module_for_axkit_tests'",
            result.stdout,
        )

    def test_bundled_plugins_not_shadowed_by_another_installed_dropin(self):
        # An older axkit installed elsewhere has its own axkit_bundled.py,
        # earlier in twisted.plugins' path: the running axkit's list wins.
        import twisted.plugins
        from axkit import discovery

        stale = os.path.abspath(self.mktemp())
        os.makedirs(stale)
        with open(os.path.join(stale, "axkit_bundled.py"), "w") as f:
            f.write(
                "from axkit.dropin import AxKitPlugin\n"
                "access_log = AxKitPlugin('access_log', 'old.AccessLog', 'stale')\n"
            )
        self.patch(twisted.plugins, "__path__", [stale] + list(twisted.plugins.__path__))
        known = discovery.discover()
        self.assertEqual(known["access_log"].module, "axkit.plugins.access_log.AccessLog")
        self.assertIn("error_log", known)

    def test_distribution_lookup_by_module_file(self):
        from axkit.discovery import distribution_of

        self.assertRegex(distribution_of("treq.api"), r"^treq \d")
        # twisted.plugins is shared by many distributions: found by file.
        self.assertRegex(distribution_of("twisted.plugins.twisted_web"), r"^Twisted \d")
        self.assertIsNone(distribution_of("tests.configplugins"))

    def test_unknown_plugin_error_names_broken_dropins(self):
        from axkit import discovery
        from axkit.config.errors import ConfigErrors

        broken = [
            discovery.BrokenDropin(
                "twisted.plugins.x", "/p/twisted/plugins/x.py", "SyntaxError: invalid syntax"
            )
        ]
        self.patch(discovery, "broken_dropins", lambda: broken)
        e = self.assertRaises(ConfigErrors, load_config, "Plugin hello\n")
        self.assertIn("unknown plugin 'hello'", str(e))
        self.assertIn("/p/twisted/plugins/x.py: SyntaxError: invalid syntax", str(e))


SITE = """
Plugin uri_to_file
Plugin serve_file
DocumentRoot /srv/main
KeepAliveTimeout 5s
<Server www>
    ServerName www.example.com
    <Location /docs>
        Plugin serve_dir
        DirectoryListing On
    </Location>
</Server>
<Server static>
    ServerName static.example.com
    ServerAlias *.cdn.example.com
    DocumentRoot /srv/static
    <Files *.txt>
        TraceHooks On
    </Files>
</Server>
"""


class DumpConfigTests(SynchronousTestCase):
    def test_default_server_and_location(self):
        text = dump_config_text(load_config(SITE), None, "/docs/a/")
        self.assertIn("server: 'www.example.com' (no --host: default server)", text)
        self.assertIn("<Location /docs> at <test config>:8", text)
        self.assertIn("plugins (innermost scope first): serve_dir, uri_to_file, serve_file", text)
        self.assertIn("response: serve_dir -> serve_file", text)
        self.assertRegex(text, r"DirectoryListing +On +# <test config>:10 \[serve_dir\]")
        self.assertRegex(text, r"KeepAliveTimeout +5 +# <test config>:5 \[core\]")
        self.assertRegex(text, r"LimitRequestLine +8190 +# default \[core\]")

    def test_host_picks_server_and_files_apply(self):
        text = dump_config_text(load_config(SITE), "IMG.cdn.example.com:8080", "/x/readme.txt")
        self.assertIn("server: 'static.example.com' (matches)", text)
        self.assertIn("<Files *.txt> at <test config>:17", text)
        self.assertRegex(text, r"TraceHooks +On +# <test config>:18")
        # The innermost setting is the one in effect.
        self.assertRegex(text, r"DocumentRoot +/srv/static +# <test config>:16 \[core\]")
        self.assertRegex(text, r"ServerAlias +\*\.cdn\.example\.com +# <test config>:15")

    def test_unknown_host(self):
        text = dump_config_text(load_config(SITE), "nobody.test", "/")
        self.assertIn("server: 'www.example.com' (unknown host: default server)", text)

    def test_command_line(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        with open(os.path.join(folder, "site.conf"), "w") as f:
            f.write(SITE)
        result = twistd(
            "--config",
            "site.conf",
            "--dump-config",
            "--host",
            "static.example.com",
            "--path",
            "/a.txt",
            cwd=folder,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("server: 'static.example.com' (matches)", result.stdout)
        self.assertRegex(result.stdout, r"TraceHooks +On +# site.conf:18")
