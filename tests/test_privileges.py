"""The root-held log opener (axkit/logopener.py) and the serving-as-root
warning; the privilege drop itself through a real twistd is in
tests/test_logs_process.py."""

import io
import os
import shutil
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from axkit.logopener import LogOpener
from axkit.tap import warn_if_serving_as_root


class OpenerTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "access.log")
        self.key = os.path.join(self.dir, "site.key")
        with open(self.key, "w") as f:
            f.write("secret\n")
        self.opener = LogOpener.start([self.log], [self.key])
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
        self.assertIn("not a file this server opened at start", str(e))
        self.assertFalse(os.path.exists(other))

    def test_refuses_a_symlink(self):
        target = os.path.join(self.dir, "target")
        open(target, "w").close()
        os.symlink(target, self.log)
        e = self.assertRaises(PermissionError, self.opener.open, self.log)
        self.assertIn("log opener:", str(e))

    def test_reads_a_known_certificate_file(self):
        if os.stat(self.dir).st_uid != 0:
            raise SkipTest("the folder must be root's (run as root)")
        self.assertEqual(self.opener.read(self.key), b"secret\n")

    def test_each_path_only_in_its_mode(self):
        # A certificate file is never opened for writing, a log file never
        # read through it.
        self.assertRaises(PermissionError, self.opener.open, self.key)
        open(self.log, "w").close()
        self.assertRaises(PermissionError, self.opener.read, self.log)
        with open(self.key) as f:
            self.assertEqual(f.read(), "secret\n")

    def test_reads_only_from_folders_only_root_may_write(self):
        os.chmod(self.dir, 0o777)
        self.addCleanup(os.chmod, self.dir, 0o700)
        e = self.assertRaises(PermissionError, self.opener.read, self.key)
        self.assertIn("is not a folder only root may write", str(e))

    def _key_below(self, mode):
        """A root-only folder with a key in it, inside a folder of ``mode``."""
        if os.getuid() != 0:
            raise SkipTest("the folders must be root's (run as root)")
        above = os.path.join(self.dir, "above")
        os.mkdir(above)
        os.chmod(above, mode)
        inner = os.path.join(above, "ssl")
        os.mkdir(inner, 0o700)
        key = os.path.join(inner, "site.key")
        with open(key, "w") as f:
            f.write("inner\n")
        opener = LogOpener.start([], [key])
        self.addCleanup(opener.stop)
        return opener, key, above

    def test_refuses_when_a_folder_above_is_writable_by_others(self):
        # Anyone could rename ssl/ away and put their own folder there.
        opener, key, above = self._key_below(0o777)
        e = self.assertRaises(PermissionError, opener.read, key)
        self.assertIn(f"{above} is not a folder only root may write", str(e))

    def test_a_sticky_folder_above_is_fine(self):
        # /tmp-like: only root may rename its root-owned entry.
        opener, key, _ = self._key_below(0o1777)
        self.assertEqual(opener.read(key), b"inner\n")

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


class RootOnlyKeyTests(SynchronousTestCase):
    """twistd -u nobody with the TLS key in a folder only root can read
    (certbot's /etc/letsencrypt/archive): a SIGHUP after a renewal serves
    the new certificate, read through the root-held opener."""

    def test_renewal_after_the_drop(self):
        if os.getuid() != 0:
            raise SkipTest("needs root (twistd -u)")
        import pwd
        import signal
        import time

        from axkit.testing import TwistdProcess

        from .test_tls import fingerprint, make_cert, need_openssl, peer

        need_openssl()
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        os.chmod(folder, 0o755)  # the config is read again by the user on SIGHUP
        tls = os.path.join(folder, "tls")
        os.mkdir(tls, 0o700)
        make_cert(tls, "a.test", "a")
        conf = os.path.join(folder, "site.conf")
        with open(conf, "w") as f:
            f.write(
                "Listen ssl:0:interface=127.0.0.1\nPlugin uri_to_file\n<Server a>\n"
                "ServerName a.test\nSSLCertificateFile tls/a.crt\n"
                "SSLCertificateKeyFile tls/a.key\n</Server>\n"
            )
        uid = pwd.getpwnam("nobody").pw_uid
        server = TwistdProcess(conf, twistd_args=["-u", str(uid)])
        self.addCleanup(server.stop)
        request = b"GET / HTTP/1.0\r\n\r\n"
        cert = os.path.join(tls, "a.crt")
        self.assertEqual(peer(server.port, "a.test", request)[0], fingerprint(cert))
        make_cert(tls, "a.test", "a")
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while peer(server.port, "a.test", request)[0] != fingerprint(cert):
            self.assertLess(time.monotonic(), deadline, server.output())
            time.sleep(0.1)
        self.assertIn("reloaded (generation 2)", server.output())
        self.assertNotIn("Permission denied", server.output())
