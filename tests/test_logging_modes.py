"""The access log and the error log are created with one mode, LOG_FILE_MODE
(0640), whatever the umask -- twistd sets 0077 when it daemonizes, after
the error log may already be open -- and again after a reopen (SIGUSR1,
logrotate); a file that exists keeps its own mode."""

import os
import stat

from twisted.trial.unittest import SynchronousTestCase

import axkit.log
from axkit.log import LOG_FILE_MODE, close_file, log_file, reopen_all
from axkit.testing import MemorySite


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class LogFileModeTests(SynchronousTestCase):
    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)

    def umask(self, value):
        old = os.umask(value)
        self.addCleanup(os.umask, old)

    def path(self, name):
        path = os.path.join(self.folder, name)
        self.addCleanup(close_file, path)
        return path

    def test_both_logs_under_any_umask(self):
        self.assertEqual(LOG_FILE_MODE, 0o640)
        for umask in (0o077, 0o022, 0o000):
            self.umask(umask)
            access, errors = self.path(f"access-{umask:o}.log"), self.path(f"error-{umask:o}.log")
            site = MemorySite(f"""
                Plugin access_log
                AccessLog {access}
                Plugin error_log
                ErrorLog {errors}
                TraceHooks On
            """)
            self.addCleanup(site.close)
            site.get("/missing")
            axkit.log.flush_all()
            self.assertEqual((mode(access), mode(errors)), (0o640, 0o640), oct(umask))

    def test_again_after_a_reopen(self):
        self.umask(0o077)
        path = self.path("error.log")
        log_file(path).write("one\n")
        os.rename(path, path + ".1")  # logrotate
        reopen_all()
        log_file(path).write("two\n")
        self.assertEqual(mode(path), 0o640)
        with open(path) as f:
            self.assertEqual(f.read(), "two\n")

    def test_an_existing_file_keeps_its_mode(self):
        path = self.path("access.log")
        with open(path, "w") as f:
            f.write("old\n")
        os.chmod(path, 0o600)
        log_file(path).write("new\n")
        self.assertEqual(mode(path), 0o600)
        with open(path) as f:
            self.assertEqual(f.read(), "old\nnew\n")
