"""X-Sendfile of a file the serving user cannot read: a 404 and one log
line, as for any file that cannot be sent (mod_xsendfile 0.12, run beside
axkit under `-u nobody`, answers 404; axkit answered 403 and logged
nothing). The check runs as an unprivileged user: as root, in a child
process that drops to nobody before the check."""

import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

NOBODY = 65534

PROBE = f"""
import os, sys
from axkit.proxy.xsendfile import XSendFile
if os.getuid() == 0:  # (as twistd -u does: imported as root, then dropped)
    os.setgroups([])
    os.setgid({NOBODY})
    os.setuid({NOBODY})
print(XSendFile([sys.argv[1]]).allowed(sys.argv[2]))
"""


class UnreadableTests(SynchronousTestCase):
    def setUp(self):
        top = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, top)
        os.chmod(top, 0o755)
        self.folder = top
        self.readable = os.path.join(top, "ok.txt")
        self.unreadable = os.path.join(top, "unread.txt")
        for name in (self.readable, self.unreadable):
            with open(name, "w") as f:
                f.write("x")
        os.chmod(self.readable, 0o644)
        os.chmod(self.unreadable, 0o000)

    def allowed(self, target):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, self.folder, target],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        if out.returncode != 0:
            self.skipTest(f"the probe could not run unprivileged: {out.stderr[-300:]}")
        return out.stdout.strip()

    def test_a_readable_file_is_allowed(self):
        self.assertEqual(self.allowed(self.readable), os.path.realpath(self.readable))

    def test_an_unreadable_file_is_refused(self):
        self.assertEqual(self.allowed(self.unreadable), "None")


class OddValueTests(SynchronousTestCase):
    def test_a_nul_byte_is_refused_not_an_error(self):
        # os.path.realpath raises ValueError on a NUL: an ASGI app (or a
        # proxied backend) can send one; it got a 500 and a traceback.
        from axkit.proxy.xsendfile import XSendFile

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        self.assertIsNone(XSendFile([folder]).allowed(folder + "/a\x00b"))
