"""The root-held log opener (axkit/logopener.py) and the serving-as-root
warning; the privilege drop itself through a real twistd is in
tests/test_logs_process.py."""

import io
import os
import shutil
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from axkit.logopener import LogOpener
from axkit.tap import warn_if_serving_as_root


class OpenerTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "access.log")
        self.opener = LogOpener.start([self.log])
        self.addCleanup(self.opener.stop)

    def test_opens_a_known_path_for_appending(self):
        with open(self.log, "w") as f:
            f.write("old\n")
        fd = self.opener.open(self.log)
        with os.fdopen(fd, "a") as f:
            f.write("new\n")
        with open(self.log) as f:
            self.assertEqual(f.read(), "old\nnew\n")

    def test_creates_a_missing_file_0640(self):
        fd = self.opener.open(self.log)
        os.close(fd)
        self.assertEqual(os.stat(self.log).st_mode & 0o777, 0o640)

    def test_refuses_any_other_path(self):
        other = os.path.join(self.dir, "shadow")
        e = self.assertRaises(PermissionError, self.opener.open, other)
        self.assertIn("not a log file this server opened at start", str(e))
        self.assertFalse(os.path.exists(other))

    def test_refuses_a_symlink(self):
        target = os.path.join(self.dir, "target")
        open(target, "w").close()
        os.symlink(target, self.log)
        e = self.assertRaises(PermissionError, self.opener.open, self.log)
        self.assertIn("log opener:", str(e))

    def test_leaves_when_the_server_closes_its_end(self):
        self.opener.sock.close()
        self.assertEqual(self.opener.process.wait(timeout=10), 0)


class Options(dict):
    def __init__(self, uid):
        dict.__init__(self)
        self.parent = {"uid": uid}


class RootWarningTests(SynchronousTestCase):
    def warned(self, uid, euid):
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        self.assertEqual(warn_if_serving_as_root(Options(uid), euid=euid), uid)
        return err.getvalue()

    def test_root_without_u_is_warned(self):
        self.assertIn("axkit: warning: serving as root (no twistd -u/-g)", self.warned(None, 0))

    def test_saying_so_or_not_root_is_quiet(self):
        self.assertEqual(self.warned(33, 0), "")
        self.assertEqual(self.warned(0, 0), "")  # -u root: meant
        self.assertEqual(self.warned(None, 1000), "")
