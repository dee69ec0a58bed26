"""Plugin asgi under a real `twistd -n axkit`: lifespan startup before the
port accepts (a failure stops the server, non-zero exit), shutdown at
SIGTERM after the requests in flight."""

import os
import signal
import socket
import subprocess
import tempfile
import time

from twisted.trial.unittest import TestCase

from axkit.testing import TWISTD_COMMAND, TwistdProcess, twistd_env

try:
    import starlette  # noqa: F401
except ImportError:
    starlette = None


def write_config(test, text):
    folder = tempfile.mkdtemp()
    test.addCleanup(__import__("shutil").rmtree, folder, True)
    path = os.path.join(folder, "site.conf")
    with open(path, "w") as f:
        f.write("Listen tcp:0:interface=127.0.0.1\nPlugin asgi\n" + text)
    return path


class TwistdTests(TestCase):
    def test_failed_startup_stops_the_server(self):
        path = write_config(self, "ASGIAlias / tests.asgiapps.probe:lifespan_fails\n")
        proc = subprocess.run(
            TWISTD_COMMAND + ["-n", "--pidfile=", "axkit", "--config", path],
            env=twistd_env(),
            cwd=os.path.dirname(path),
            capture_output=True,
            timeout=30,
        )
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertNotEqual(proc.returncode, 0, output)
        self.assertIn(
            "plugin asgi failed to start: ASGIAlias /: "
            "tests.asgiapps.probe:lifespan_fails: lifespan startup failed: "
            "no database",
            output,
        )
        self.assertNotIn("listening on", output)

    def test_sigterm_shutdown_after_requests_in_flight(self):
        if starlette is None:
            raise __import__("twisted.trial.unittest").trial.unittest.SkipTest(
                "starlette is not installed"
            )
        path = write_config(
            self, "ASGIAlias /star tests.asgiapps.starlette_app:app\nASGILifespan on\n"
        )
        events = os.path.join(os.path.dirname(path), "events.txt")
        os.environ["AXKIT_TEST_EVENTS"] = events
        self.addCleanup(os.environ.pop, "AXKIT_TEST_EVENTS", None)
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        with open(events) as f:
            # Startup ran before the port accepted.
            self.assertEqual(f.read(), "startup\n")
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"GET /star/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        server.signal(signal.SIGTERM)
        answer = b""
        while b"slow answer" not in answer:
            piece = s.recv(65536)
            if not piece:
                break
            answer += piece
        s.close()
        self.assertIn(b"200 OK", answer)
        self.assertIn(b"slow answer", answer)
        self.assertEqual(server.process.wait(15), 0, server.output())
        with open(events) as f:
            self.assertEqual(f.read().split(), ["startup", "slow", "done", "shutdown"])
