"""Logging: events with level, plugin and request; the `logging` hook sees
every one; LogLevel per scope; ErrorLog; access log formats; SIGUSR1 reopen;
the router installed as twistd's log observer (with and without -n)."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from twisted.application.service import Application
from twisted.logger import ILogObserver, Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

import axkit.log
from axkit.log import close_file, log_file, reopen_all
from axkit.plugins.access_log import compile_format
from axkit.server import AxKitService
from axkit.testing import MemorySite, TwistdProcess, load_config
from tests.configplugins import Catcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TempDirMixin:
    def folder(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        return folder

    def logfile(self, name="x.log"):
        path = os.path.join(self.folder(), name)
        self.addCleanup(close_file, path)
        return path

    def read(self, path):
        axkit.log.flush_all()
        with open(path) as f:
            return f.read()

    def site(self, text):
        site = MemorySite(text)
        self.addCleanup(site.close)
        return site


class EventTests(TempDirMixin, SynchronousTestCase):
    def test_plugin_failure_event_has_level_plugin_request(self):
        site = self.site("Plugin tests.configplugins.Boom\n")
        response = site.get("/x")
        self.assertEqual(response.status, 500)
        failures = [e for e in site.events if e.get("log_failure") is not None]
        self.assertEqual(len(failures), 1)
        event = failures[0]
        self.assertEqual(event["plugin"], "boom")
        self.assertEqual(event["request"].path, "/x")
        self.assertEqual(event["log_level"], LogLevel.critical)
        self.assertIn("kaboom", event["log_failure"].getErrorMessage())
        self.flushLoggedErrors(ValueError)

    def test_plugin_logger_names_the_plugin(self):
        site = self.site("Plugin tests.configplugins.Slow\n")
        site.get("/y")
        [event] = [e for e in site.events if e.get("log_namespace") == "axkit.plugins.slow"]
        self.assertEqual(event["plugin"], "slow")
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(event["request"].path, "/y")

    def test_logging_hook_sees_every_event_with_its_scope(self):
        Catcher.seen = []
        site = self.site("""
            Plugin tests.configplugins.Catcher
            Plugin tests.configplugins.Slow
            LogLevel warn
            <Location /verbose>
                LogLevel debug
            </Location>
        """)
        site.get("/verbose/a")
        site.get("/b")
        Logger(namespace="elsewhere").debug("not about a request")
        seen = [(formatted(e), conf.log_level) for e, conf in Catcher.seen]
        self.assertIn(("slow answer for /verbose/a", "debug"), seen)
        self.assertIn(("slow answer for /b", "warn"), seen)
        self.assertIn(("not about a request", "warn"), seen)


def formatted(event):
    from twisted.logger import formatEvent

    return formatEvent(event)


class ErrorLogTests(TempDirMixin, SynchronousTestCase):
    def test_log_level_per_scope(self):
        errors = self.logfile("error.log")
        site = self.site(f"""
            Plugin error_log
            Plugin tests.configplugins.Slow
            ErrorLog {errors}
            LogLevel warn
            <Location /verbose>
                LogLevel info
            </Location>
        """)
        site.get("/verbose/a")
        site.get("/quiet/b")
        text = self.read(errors)
        self.assertRegex(
            text,
            r"\[info\] \[plugin slow\] \[client 127\.0\.0\.1\] "
            r"slow answer for /verbose/a\n",
        )
        self.assertNotIn("/quiet/b", text)

    def test_failure_written_with_traceback(self):
        errors = self.logfile("error.log")
        site = self.site(f"""
            Plugin error_log
            Plugin tests.configplugins.Boom
            ErrorLog {errors}
        """)
        site.get("/x")
        text = self.read(errors)
        self.assertIn(
            "[critical] [plugin boom] [client 127.0.0.1] plugin boom failed in "
            "hook_response for GET /x",
            text,
        )
        self.assertIn("ValueError: kaboom", text)
        self.flushLoggedErrors(ValueError)

    def test_error_log_to_stdout_and_stderr(self):
        for where in ("stdout", "stderr"):
            stream = io.StringIO()
            self.patch(sys, f"__{where}__", stream)
            self.patch(axkit.log, "_files", {})
            site = self.site(f"""
                Plugin error_log
                Plugin tests.configplugins.Slow
                ErrorLog {where}
            """)
            site.get("/z")
            self.assertIn("slow answer for /z", stream.getvalue())

    def test_log_path_that_cannot_be_a_file_is_a_config_error(self):
        from axkit.config.errors import ConfigErrors

        folder = self.folder()
        e = self.assertRaises(ConfigErrors, load_config, f"Plugin error_log\nErrorLog {folder}\n")
        self.assertEqual(str(e), f"<test config>:2: {folder} is a directory, not a log file")
        e = self.assertRaises(
            ConfigErrors, load_config, f"Plugin access_log\nAccessLog {folder} json\n"
        )
        self.assertIn("is a directory, not a log file", str(e))

    def test_relative_error_log_is_from_config_file(self):
        folder = self.folder()
        conf = os.path.join(folder, "site.conf")
        os.makedirs(os.path.join(folder, "logs"))
        with open(conf, "w") as f:
            f.write("Plugin error_log\nErrorLog logs/error.log\n")
        from axkit.config.loader import load_file

        config = load_file(conf)
        self.assertEqual(
            config.global_resolved.conf.error_log, os.path.join(folder, "logs", "error.log")
        )


class AccessLogTests(TempDirMixin, SynchronousTestCase):
    def access(self, fmt, path="/a%20b?x=1", headers=(), extra=""):
        log = self.logfile("access.log")
        site = self.site(f"""
            Plugin tests.configplugins.Slow
            Plugin access_log
            {extra}
            AccessLog {log} {fmt}
        """)
        conn = site.connect(peer=("192.0.2.7", 51000))
        conn.request("GET", path, [("Host", "www.test"), *headers])
        site.wait_for(conn)
        return self.read(log)

    def test_common(self):
        line = self.access("common")
        self.assertRegex(
            line,
            r"^192\.0\.2\.7 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] "
            r'"GET /a%20b\?x=1 HTTP/1\.1" 200 5\n$',
        )

    def test_combined(self):
        line = self.access(
            "combined", headers=[("Referer", 'http://r/"q"'), ("User-Agent", "UA/1")]
        )
        self.assertRegex(
            line,
            r'^192\.0\.2\.7 - - \[[^]]+\] "GET /a%20b\?x=1 HTTP/1\.1" '
            r'200 5 "http://r/\\"q\\"" "UA/1"\n$',
        )

    def test_default_is_combined(self):
        log = self.logfile("access.log")
        site = self.site(f"Plugin tests.configplugins.Slow\nPlugin access_log\nAccessLog {log}\n")
        site.get("/")
        self.assertRegex(self.read(log), r'" 200 5 "-" "-"\n$')

    def test_json_lines(self):
        line = self.access("json", headers=[("User-Agent", "UA/1")])
        record = json.loads(line)
        self.assertEqual(record["client"], "192.0.2.7")
        self.assertEqual(record["method"], "GET")
        self.assertEqual(record["path"], "/a b")
        self.assertEqual(record["query"], "x=1")
        self.assertEqual(record["status"], 200)
        self.assertEqual(record["bytes"], 5)
        self.assertEqual(record["user_agent"], "UA/1")
        self.assertEqual(record["host"], "www.test")
        self.assertIsInstance(record["duration_ms"], float)

    def test_custom_format_with_apache_escapes(self):
        line = self.access(
            '"%m|%U|%q|%H|%>s|%s|%b|%B|%{X-Thing}i|%{Content-Type}o|%v|%V|%l|%u|%%"',
            headers=[("X-Thing", "t1")],
            extra="ServerName main.test",
        )
        self.assertEqual(
            line, "GET|/a b|?x=1|HTTP/1.1|200|200|5|5|t1|text/plain|main.test|www.test|-|-|%\n"
        )

    def test_durations(self):
        line = self.access('"%D %T %{ms}T"')
        micro, seconds, millis = (int(x) for x in line.split())
        self.assertGreaterEqual(micro, 0)
        self.assertEqual(seconds, micro // 1_000_000)
        self.assertEqual(millis, micro // 1000)

    def test_nickname_from_logformat(self):
        line = self.access("short", extra='LogFormat "%h %>s" short')
        self.assertEqual(line, "192.0.2.7 200\n")

    def test_bad_escape_is_a_config_error(self):
        from axkit.config.errors import ConfigErrors

        e = self.assertRaises(
            ConfigErrors, load_config, 'Plugin access_log\nAccessLog stdout "%h %Q"\n'
        )
        self.assertIn("<test config>:2: unknown LogFormat escape %Q", str(e))
        e = self.assertRaises(
            ConfigErrors, load_config, 'Plugin access_log\nLogFormat "%h %{Referer" bad\n'
        )
        self.assertIn("<test config>:2: incomplete LogFormat escape", str(e))

    def test_control_characters_escaped(self):
        render = compile_format("%{X}i")

        class R:
            headers = {"x": 'a\x01b"c\\'}

        self.assertEqual(render(R, 0), 'a\\x01b\\"c\\\\\n')

    def test_off(self):
        log = self.logfile("access.log")
        site = self.site(
            f"Plugin tests.configplugins.Slow\nPlugin access_log\n"
            f"AccessLog {log}\n<Location /private>\nAccessLog off\n</Location>\n"
        )
        site.get("/private/x")
        site.get("/public")
        text = self.read(log)
        self.assertNotIn("/private", text)
        self.assertIn("/public", text)


class ReopenTests(TempDirMixin, SynchronousTestCase):
    def test_reopen_after_rotation(self):
        path = self.logfile("access.log")
        f = log_file(path, buffered=True)
        f.write("one\n")
        f.flush()
        os.rename(path, path + ".1")
        f.write("two\n")  # buffered: goes to whichever file is open at flush
        reopen_all()
        f.write("three\n")
        f.flush()
        with open(path + ".1") as old:
            self.assertEqual(old.read(), "one\ntwo\n")
        with open(path) as new:
            self.assertEqual(new.read(), "three\n")


class ObserverTests(SynchronousTestCase):
    def test_router_is_twistds_log_observer(self):
        application = Application("axkit")
        service = AxKitService(load_config("Plugin error_log\n"), handle_signals=False)
        service.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), service.log_router)


def _get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class ProcessTests(TempDirMixin, SynchronousTestCase):
    """The real process: error log, access log and SIGUSR1, with and without -n."""

    def config(self, folder):
        os.makedirs(os.path.join(folder, "htdocs"), exist_ok=True)
        os.makedirs(os.path.join(folder, "logs"), exist_ok=True)  # as Apache, not created
        with open(os.path.join(folder, "htdocs", "index.html"), "w") as f:
            f.write("hello\n")
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\n"
                "Plugin error_log\nPlugin access_log\nPlugin uri_to_file\n"
                "Plugin serve_file\nDocumentRoot htdocs\n"
                "ErrorLog logs/error.log\nAccessLog logs/access.log common\n"
            )
        return path

    def test_foreground_logs_and_sigusr1(self):
        folder = self.folder()
        logs = os.path.join(folder, "logs")
        server = TwistdProcess(self.config(folder), watch=os.path.join(logs, "error.log"))
        self.addCleanup(server.stop)
        self.assertEqual(_get(f"http://127.0.0.1:{server.port}/")[0], 200)
        # The line is written after the response (response_sent), flushed within 1 s.
        self.assertTrue(wait_for_file_text(os.path.join(logs, "access.log"), '"GET / '))
        os.rename(os.path.join(logs, "access.log"), os.path.join(logs, "access.log.1"))
        server.signal(signal.SIGUSR1)
        self.assertTrue(wait_for_file_text(os.path.join(logs, "error.log"), "log files reopened"))
        self.assertEqual(_get(f"http://127.0.0.1:{server.port}/second")[0], 404)
        self.assertTrue(wait_for_file_text(os.path.join(logs, "access.log"), '"GET /second'))
        self.assertTrue(wait_for_file_text(os.path.join(logs, "access.log.1"), '"GET / '))
        with open(os.path.join(logs, "access.log.1")) as f:
            self.assertNotIn("/second", f.read())
        # twistd's own lines went through our observer into ErrorLog.
        self.assertTrue(
            wait_for_file_text(os.path.join(logs, "error.log"), "axkit listening on tcp:0")
        )

    def test_daemon_mode_logs_to_error_log(self):
        folder = self.folder()
        config = self.config(folder)
        pidfile = os.path.join(folder, "twistd.pid")
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                f"--pidfile={pidfile}",
                "axkit",
                "--config",
                config,
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        error_log = os.path.join(folder, "logs", "error.log")
        self.assertTrue(
            wait_for_file_text(error_log, "axkit listening on"),
            "no listening line in the error log",
        )
        pid = int(open(pidfile).read())
        self.addCleanup(_kill, pid)
        with open(error_log) as f:
            port = int(re.search(r"\(http://127\.0\.0\.1:(\d+)/\)", f.read()).group(1))
        self.assertEqual(_get(f"http://127.0.0.1:{port}/"), (200, b"hello\n"))
        self.assertTrue(
            wait_for_file_text(os.path.join(folder, "logs", "access.log"), '"GET / HTTP/1.1" 200 6')
        )


def _kill(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def wait_for_file_text(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if text in f.read():
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return False
