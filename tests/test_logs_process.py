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
        # logrotate: the files move away, SIGUSR1 -- the serving user cannot
        # create files in the root-owned folder, the root-held log opener can.
        os.rename(access, access + ".1")
        os.rename(errors, errors + ".1")
        server.signal(signal.SIGUSR1)
        self.assertTrue(wait_for_text(errors, "log files reopened"), server.output())
        self.assertTrue(wait_for_text(access + ".1", '"GET /missing HTTP/1.1" 404'))
        with open(access + ".1") as f:
            self.assertIn('"GET / HTTP/1.1" 200 6', f.read())
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/again"), 404)
        self.assertTrue(wait_for_text(access, '"GET /again HTTP/1.1" 404'))
        for path in (access, errors):
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o640), path)
        # The server itself runs as the user (only the opener stays root).
        with open(f"/proc/{server.process.pid}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(user.pw_uid)})
        text = server.watched() + server.output()
        with open(errors + ".1") as f:
            text += f.read()
        self.assertNotIn("Traceback", text)
        self.assertNotIn("PermissionError", text)
        self.assertNotIn("cannot reopen", text)
        # Twice, to see the opener carries on.
        os.rename(access, access + ".2")
        server.signal(signal.SIGUSR1)
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/third"), 404)
        self.assertTrue(wait_for_text(access, '"GET /third HTTP/1.1" 404'))

    def test_serving_as_root_without_saying_so_is_warned(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("needs root")
        folder = tempfile.mkdtemp()
        server = TwistdProcess(site(folder, logs=False))
        self.addCleanup(server.stop)
        self.assertIn("axkit: warning: serving as root (no twistd -u/-g)", server.output())
        user = pwd.getpwnam("nobody")
        folder = tempfile.mkdtemp()
        server = TwistdProcess(site(folder, logs=False), twistd_args=["-u", str(user.pw_uid)])
        self.addCleanup(server.stop)
        self.assertNotIn("serving as root", server.output())


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
