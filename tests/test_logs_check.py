"""Logs that never go missing: bad log paths refused by --check, files opened
before privileges drop, SIGUSR1 that cannot reopen keeps the old file, and
where a daemon's stdout/stderr go."""

import os
import subprocess
import tempfile

from twisted.trial import unittest

import axkit.log
from axkit.config.errors import ConfigErrors
from axkit.log import LogFile, close_file, log_file, reopen_all
from axkit.tap import daemon_log_path
from axkit.testing import TWISTD_COMMAND, load_config, twistd_env


class CheckTests(unittest.SynchronousTestCase):
    def test_missing_folder_is_a_config_error(self):
        folder = tempfile.mkdtemp()
        for text in (
            f"Plugin error_log\nErrorLog {folder}/nope/error.log\n",
            f"Plugin access_log\nAccessLog {folder}/nope/access.log common\n",
        ):
            e = self.assertRaises(ConfigErrors, load_config, text)
            self.assertEqual(
                str(e),
                f"<test config>:2: cannot create log file {folder}/nope/"
                f"{'error' if 'Error' in text else 'access'}.log: folder "
                f"{folder}/nope does not exist",
            )

    def test_unwritable_folder_is_a_config_error(self):
        if os.getuid() == 0:
            raise unittest.SkipTest("root may write anywhere")
        folder = tempfile.mkdtemp()
        os.chmod(folder, 0o500)
        self.addCleanup(os.chmod, folder, 0o700)
        e = self.assertRaises(
            ConfigErrors, load_config, f"Plugin error_log\nErrorLog {folder}/error.log\n"
        )
        self.assertIn(f"folder {folder} is not writable", str(e))

    def test_twistd_check_says_file_and_line(self):
        folder = tempfile.mkdtemp()
        conf = os.path.join(folder, "site.conf")
        with open(conf, "w") as f:
            f.write("Plugin access_log\n\nAccessLog logs/access.log\n")
        result = subprocess.run(
            TWISTD_COMMAND + ["axkit", "--config", conf, "--check"],
            env=twistd_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn(f"{conf}:3: cannot create log file {folder}/logs/access.log", result.stderr)
        os.mkdir(os.path.join(folder, "logs"))
        self.assertEqual(
            load_config(f"Plugin access_log\nAccessLog {folder}/logs/a.log\n").source,
            "<test config>",
        )


class EarlyOpenTests(unittest.SynchronousTestCase):
    def test_startup_opens_every_configured_file(self):
        folder = tempfile.mkdtemp()
        names = [os.path.join(folder, n) for n in ("a.log", "b.log", "e.log", "f.log")]
        for name in names:
            self.addCleanup(close_file, name)
        config = load_config(
            f"""
            Plugin access_log
            Plugin error_log
            AccessLog {names[0]}
            <Server other>
                ErrorLog {names[3]}
                <Location /x>
                    AccessLog {names[1]} common
                </Location>
            </Server>
            ErrorLog {names[2]}
            """
        )
        for plugin in config.plugins.values():
            plugin.startup(config, None)
        self.assertEqual([os.path.exists(n) for n in names], [True] * 4)


class ReopenTests(unittest.SynchronousTestCase):
    def test_reopen_failure_keeps_the_old_file(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "x.log")
        self.patch(axkit.log, "_files", {})
        f = log_file(path)
        f.write("one\n")
        os.rename(path, path + ".1")

        def refuse(self):
            raise PermissionError(13, "Permission denied")

        self.patch(LogFile, "open", refuse)
        self.assertEqual(reopen_all(), [(path, "Permission denied")])
        f.write("two\n")
        f.stream.close()
        with open(path + ".1") as g:
            self.assertEqual(g.read(), "one\ntwo\n")


class DaemonLogPathTests(unittest.SynchronousTestCase):
    def path(self, **parent):
        class Options(dict):
            pass

        options = Options()
        options.parent = dict({"nodaemon": False, "logfile": None, "rundir": "."}, **parent)
        return daemon_log_path(options)

    def test_paths(self):
        self.assertEqual(self.path(), os.path.abspath("twistd.log"))
        self.assertEqual(self.path(rundir="/srv", logfile="ax.log"), "/srv/ax.log")
        self.assertEqual(self.path(logfile="/var/log/ax.log"), "/var/log/ax.log")
        self.assertIsNone(self.path(nodaemon=True))
        self.assertIsNone(self.path(logfile="-"))
        self.assertIsNone(self.path(syslog=True))
        self.assertIsNone(daemon_log_path({}))
