"""TraceHooks lines in the order of the request's steps: response_sent,
which runs inside the hook_response that completed the response, is
written after that hook's line (it came first); a hook that raised has a
line too."""

import tempfile

from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from axkit.hooks import DECLINED, DONE
from axkit.testing import MemorySite


class Later:
    """Answers /later after a second (a Deferred), /boom by raising."""

    name = "later"

    def hook_response(self, request, conf):
        if request.path == "/boom":
            raise RuntimeError("broke")
        if request.path != "/later":
            return DECLINED

        def answer():
            request.send(200, "late\n", "text/plain")
            return DONE

        return deferLater(request.reactor, 1, answer)


class Sent:
    name = "sent"

    def hook_response_sent(self, request, conf):
        return DECLINED


class TraceOrderTests(SynchronousTestCase):
    def setUp(self):
        root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, root)
        with open(f"{root}/index.html", "w") as f:
            f.write("home\n")
        self.site = MemorySite(f"""
            DocumentRoot {root}
            TraceHooks On
            Plugin tests.test_plugins_trace_order.Sent
            Plugin tests.test_plugins_trace_order.Later
            Plugin uri_to_file
            Plugin serve_file
        """)
        self.addCleanup(self.site.close)

    def hooks(self):
        return [(hook, plugin, str(result)) for hook, plugin, result, _ in self.site.traces()]

    def test_a_file(self):
        self.site.get("/index.html")
        self.assertEqual(
            self.hooks()[-3:],
            [
                ("response", "later", "DECLINED"),
                ("response", "serve_file", "DONE"),
                ("response_sent", "sent", "DECLINED"),
            ],
        )

    def test_a_deferred_answer(self):
        connection = self.site.connect()
        connection.request("GET", "/later")
        self.site.advance(1)
        self.assertEqual(len(connection.responses()), 1)
        self.assertEqual(
            self.hooks()[-2:],
            [("response", "later", "DONE"), ("response_sent", "sent", "DECLINED")],
        )

    def test_a_hook_that_raised(self):
        self.assertEqual(self.site.get("/boom").status, 500)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(
            self.hooks()[-2:],
            [("response", "later", "raised"), ("response_sent", "sent", "DECLINED")],
        )
