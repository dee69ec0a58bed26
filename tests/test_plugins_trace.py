"""TraceHooks: per request, which plugin answered each hook, how, how long."""

import os

from twisted.trial.unittest import SynchronousTestCase

from axkit.hooks import DECLINED, DONE, OK
from axkit.log import close_file
from axkit.testing import MemorySite

CONFIG = """
Plugin tests.configplugins.MapToFile
Plugin tests.configplugins.Outer
DocumentRoot /srv
<Location /slow>
    Plugin tests.configplugins.Slow
    TraceHooks On
</Location>
<Location /quiet>
    Plugin tests.configplugins.Slow
</Location>
"""


class TraceTests(SynchronousTestCase):
    def site(self, text=CONFIG):
        site = MemorySite(text)
        self.addCleanup(site.close)
        return site

    def test_trace_records_each_plugin_result_and_time(self):
        site = self.site()
        response = site.get("/slow/x")
        self.assertEqual(response.body, b"late\n")
        self.assertEqual(
            site.traces(),
            [
                ("uri_translation", "maptofile", OK, 0.0),
                ("fixup", "outer", DECLINED, 0.0),
                # The Deferred fired after 2 s of (fake) clock time.
                ("response", "slow", DONE, 2.0),
            ],
        )

    def test_trace_says_which_scope(self):
        site = self.site()
        site.get("/slow/x")
        scope_lines = [m for m in site.messages("axkit.trace") if "[scope]" in m]
        self.assertEqual(len(scope_lines), 1)
        self.assertIn("<Location /slow> at <test config>:5", scope_lines[0])
        self.assertIn("plugins: slow, maptofile, outer", scope_lines[0])

    def test_trace_is_per_scope(self):
        site = self.site()
        self.assertEqual(site.get("/quiet/x").body, b"late\n")
        self.assertEqual(site.traces(), [])

    def test_trace_line_text(self):
        site = self.site()
        site.get("/slow/x")
        lines = [m for m in site.messages("axkit.trace") if "hook_response]" in m]
        self.assertEqual(lines, ["trace GET /slow/x [hook_response] slow -> DONE (2000.000 ms)"])

    def test_trace_reaches_the_error_log_whatever_the_level(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        errors = os.path.join(folder, "error.log")
        self.addCleanup(close_file, errors)
        site = self.site(
            CONFIG
            + f"""
            Plugin error_log
            ErrorLog {errors}
            LogLevel crit
        """
        )
        site.get("/slow/x")
        site.get("/quiet/x")
        with open(errors) as f:
            text = f.read()
        self.assertIn(
            "[info] [axkit.trace] [client 127.0.0.1] trace GET /slow/x "
            "[hook_response] slow -> DONE (2000.000 ms)",
            text,
        )
        self.assertNotIn("/quiet/x", text)
        # The plugin's own info line is below LogLevel crit: not written.
        self.assertNotIn("slow answer", text)


class ConnectionTraceTests(SynchronousTestCase):
    def test_connect_and_disconnect_traced(self):
        site = MemorySite("Plugin tests.configplugins.Doorman\nTraceHooks On\n")
        self.addCleanup(site.close)
        conn = site.connect(peer=("192.0.2.9", 4000))
        conn.lose()
        self.assertEqual(
            [t[:3] for t in site.traces()],
            [("connect", "doorman", DECLINED), ("disconnect", "doorman", DECLINED)],
        )
        self.assertIn(
            "trace connection from 192.0.2.9 [hook_connect] doorman -> DECLINED (0.000 ms)",
            site.messages("axkit.trace"),
        )

    def test_not_traced_when_off(self):
        site = MemorySite("Plugin tests.configplugins.Doorman\n")
        self.addCleanup(site.close)
        site.connect().lose()
        self.assertEqual(site.traces(), [])
