"""Logs through a real `twistd axkit`: after `-u nobody` (as root), and as a daemon."""

import grp
import os
import pwd
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

from twisted.trial import unittest

from axkit.testing import TWISTD_COMMAND, TwistdProcess, twistd_env

from .test_logging import wait_for_file_text as wait_for_text


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def site(folder, logs=True):
    os.chmod(folder, 0o755)  # readable by the unprivileged user
    os.makedirs(os.path.join(folder, "htdocs"))
    with open(os.path.join(folder, "htdocs", "index.html"), "w") as f:
        f.write("hello\n")
    path = os.path.join(folder, "site.conf")
    with open(path, "w") as f:
        f.write(
            "Listen tcp:0:interface=127.0.0.1\nPlugin uri_to_file\nPlugin serve_file\n"
            "DocumentRoot htdocs\nPlugin error_log\nPlugin access_log\n"
        )
        if logs:
            os.makedirs(os.path.join(folder, "logs"))
            f.write(
                "LogLevel info\n"
                "ErrorLog logs/error.log\n<Server>\nAccessLog logs/access.log common\n</Server>\n"
            )
    return path


class PrivilegeDropTests(unittest.TestCase):
    def test_logs_keep_working_after_dropping_root(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("needs root (twistd -u/-g)")
        user = pwd.getpwnam("nobody")
        group = "nogroup" if "nogroup" in {g.gr_name for g in grp.getgrall()} else "nobody"
        folder = tempfile.mkdtemp()
        logs = os.path.join(folder, "logs")
        server = TwistdProcess(
            site(folder),
            watch=os.path.join(logs, "error.log"),
            twistd_args=["-u", str(user.pw_uid), "-g", group],
        )
        self.addCleanup(server.stop)
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/"), 200)
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/missing"), 404)
        access = os.path.join(logs, "access.log")
        errors = os.path.join(logs, "error.log")
        self.assertTrue(wait_for_text(errors, "set uid/gid"))
        # SIGUSR1 after the drop, the files still in place: it flushes the
        # access log; reopening as the new user cannot, so the old files
        # stay in use and it is said.
        server.signal(signal.SIGUSR1)
        self.assertTrue(wait_for_text(errors, "cannot reopen log file"))
        self.assertTrue(wait_for_text(access, '"GET /missing HTTP/1.1" 404'), server.output())
        with open(access) as f:
            self.assertIn('"GET / HTTP/1.1" 200 6', f.read())
        text = server.watched() + server.output()
        self.assertNotIn("Traceback", text)
        self.assertNotIn("PermissionError", text)
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/again"), 404)
        self.assertTrue(wait_for_text(access, '"GET /again HTTP/1.1" 404'))


class DaemonTests(unittest.TestCase):
    def test_daemon_writes_twistd_log(self):
        # quickstart.md: without -n, twistd.log in the current folder holds
        # what would have gone to stdout and stderr (ErrorLog and AccessLog's
        # defaults).
        folder = tempfile.mkdtemp()
        config = site(folder, logs=False)
        pidfile = os.path.join(folder, "twistd.pid")
        result = subprocess.run(
            TWISTD_COMMAND + [f"--pidfile={pidfile}", "axkit", "--config", config],
            cwd=folder,
            env=twistd_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.addCleanup(_stop, pidfile)
        log = os.path.join(folder, "twistd.log")
        self.assertTrue(wait_for_text(log, "axkit listening on"), "no twistd.log")
        with open(log) as f:
            port = int(re.search(r"\(http://127\.0\.0\.1:(\d+)/\)", f.read()).group(1))
        self.assertEqual(get(f"http://127.0.0.1:{port}/"), 200)
        self.assertTrue(wait_for_text(log, '"GET / HTTP/1.1" 200 6'))


def _stop(pidfile):
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return
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
