"""--reload: a change to a mounted app's Python file restarts the server on
the same listening socket (no connection refused meanwhile)."""

import os
import shutil
import socket
import tempfile
import time

from twisted.trial.unittest import TestCase

from axkit.testing import TwistdProcess

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"version %d\\n"})
"""


def get(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                return data
            data += piece
    finally:
        s.close()


class ReloadTests(TestCase):
    def test_change_restarts_on_the_same_socket(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        app = os.path.join(folder, "app.py")
        with open(app, "w") as f:
            f.write(APP % 1)
        conf = os.path.join(folder, "site.conf")
        with open(conf, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\nPlugin asgi\nASGIAlias / app.py\n"
                "ASGILifespan off\n"
            )
        server = TwistdProcess(conf, args=("--reload",))
        self.addCleanup(server.stop)
        self.assertTrue(server.wait_for_output("--reload: watching"))
        self.assertTrue(get(server.port).endswith(b"version 1\n"))
        time.sleep(0.05)
        with open(app, "w") as f:
            f.write(APP % 2)
        refused = 0
        deadline = time.monotonic() + 15
        answer = b""
        while time.monotonic() < deadline:
            try:
                answer = get(server.port)
            except ConnectionRefusedError:
                refused += 1
            if answer.endswith(b"version 2\n"):
                break
            time.sleep(0.05)
        self.assertTrue(answer.endswith(b"version 2\n"), server.output())
        self.assertEqual(refused, 0)
        self.assertIn("app.py changed; restarting", server.output())
        self.assertIsNone(server.process.poll())  # the same process, still up


SLOW_APP = """
import asyncio, os

FOLDER = %r

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        open(os.path.join(FOLDER, "started"), "w").close()
        for _ in range(1000):  # until the test says so (10 s at most)
            if os.path.exists(os.path.join(FOLDER, "release")):
                break
            await asyncio.sleep(0.01)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"version %d\\n"})
"""


class DrainTests(TestCase):
    def test_a_request_in_flight_at_the_change_finishes(self):
        # Not cut by the restart (a reset for the browser): the server stops
        # accepting, lets it finish, then re-executes.
        import threading

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        app = os.path.join(folder, "app.py")
        with open(app, "w") as f:
            f.write(SLOW_APP % (folder, 1))
        conf = os.path.join(folder, "site.conf")
        with open(conf, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\nPlugin asgi\nASGIAlias / app.py\n"
                "ASGILifespan off\n"
            )
        server = TwistdProcess(conf, args=("--reload",))
        self.addCleanup(server.stop)
        self.assertTrue(server.wait_for_output("--reload: watching"))
        answers = []

        def slow():
            s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            try:
                s.sendall(b"GET /slow HTTP/1.0\r\n\r\n")
                data = b""
                while True:
                    piece = s.recv(65536)
                    if not piece:
                        break
                    data += piece
                answers.append(data)
            except OSError as e:
                answers.append(e)
            finally:
                s.close()

        client = threading.Thread(target=slow)
        client.start()
        self.addCleanup(client.join, 20)
        started = os.path.join(folder, "started")
        end = time.monotonic() + 10
        while not os.path.exists(started) and time.monotonic() < end:
            time.sleep(0.01)
        self.assertTrue(os.path.exists(started), server.output())
        before = len(server.output())
        with open(app, "w") as f:
            f.write(SLOW_APP % (folder, 2))
        self.assertTrue(server.wait_for_output("changed; restarting", after=before))
        open(os.path.join(folder, "release"), "w").close()
        client.join(20)
        self.assertEqual(len(answers), 1)
        self.assertIsInstance(answers[0], bytes, answers[0])
        self.assertTrue(answers[0].endswith(b"version 1\n"), answers[0])
        # And the new code serves next, on the same socket.
        end = time.monotonic() + 15
        answer = b""
        while time.monotonic() < end and not answer.endswith(b"version 2\n"):
            answer = get(server.port)
            time.sleep(0.05)
        self.assertTrue(answer.endswith(b"version 2\n"), server.output())
