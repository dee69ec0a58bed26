"""Each hook result (DECLINED, OK, DONE, a status, a Deferred) and plugin failures,
through the full chain in memory."""

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from axkit.hooks import DECLINED, DONE, OK, PluginError, run_chain
from axkit.testing import MemorySite
from tests import hookplugins


def site(text):
    s = MemorySite(text)
    return s


class RunChainTests(SynchronousTestCase):
    """The chain runner on its own."""

    def test_first_non_declined_result_wins(self):
        calls = []

        def declines(*a):
            calls.append("a")
            return DECLINED

        def none(*a):
            calls.append("b")

        def ok(*a):
            calls.append("c")
            return OK

        def never(*a):
            calls.append("d")
            return DONE

        chain = tuple((object(), f) for f in (declines, none, ok, never))
        self.assertIs(run_chain(chain, "fixup", ()), OK)
        self.assertEqual(calls, ["a", "b", "c"])

    def test_all_declined(self):
        self.assertIs(run_chain(((object(), lambda: None),), "fixup", ()), DECLINED)

    def test_exception_names_the_plugin(self):
        class P:
            name = "pname"

        def raises():
            raise ValueError("x")

        with self.assertRaises(PluginError) as cm:
            run_chain(((P(), raises),), "fixup", ())
        self.assertEqual(cm.exception.plugin_name, "pname")
        self.assertEqual(cm.exception.hook, "fixup")
        self.assertIn("pname", str(cm.exception))


class HookResultTests(SynchronousTestCase):
    def setUp(self):
        del hookplugins.pending[:]
        del hookplugins.seen[:]
        del hookplugins.ErrorWatcher.errors[:]

    def make(self, plugins, extra=""):
        lines = "".join(f"Plugin tests.hookplugins.{p}\n" for p in plugins)
        s = MemorySite(lines + extra)
        self.addCleanup(s.close)
        return s

    def test_done_from_response(self):
        r = self.make(["Hello"]).get("/x")
        self.assertEqual((r.status, r.body), (200, b"hello /x"))

    def test_all_declined_response_is_404_for_get_and_405_for_post(self):
        s = self.make(["Recorder"])
        self.assertEqual(s.get("/nothing").status, 404)
        r = s.request("DELETE", "/nothing")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_status_result_sends_that_error_and_stops_the_phases(self):
        s = self.make(["Recorder", "Teapot", "Hello"])
        r = s.get("/tea")
        self.assertEqual(r.status, 418)
        self.assertIn(b"418", r.body)
        hooks = [h for _, h, _ in hookplugins.seen]
        self.assertNotIn("fixup", hooks)
        self.assertNotIn("response", hooks)
        self.assertIn("response_sent", hooks)

    def test_deferred_result_resumes_the_chain(self):
        s = self.make(["Later"])
        conn = s.connect()
        conn.request("GET", "/slow")
        self.assertEqual(conn.responses(), [])
        hookplugins.pending.pop().callback("done later")
        [r] = conn.responses()
        self.assertEqual((r.status, r.body), (200, b"done later"))

    def test_deferred_declined_goes_on_to_the_next_plugin(self):
        s = self.make(["LaterDecline", "Hello"])
        conn = s.connect()
        conn.request("GET", "/p")
        hookplugins.pending.pop().callback(DECLINED)
        [r] = conn.responses()
        self.assertEqual(r.body, b"hello /p")

    def test_ok_from_response_lets_the_plugin_answer_later(self):
        s = self.make(["OkThenNothing"])
        conn = s.connect()
        conn.request("GET", "/a")
        self.assertEqual(conn.responses(), [])
        hookplugins.pending.pop().callback("eventually")
        self.assertEqual(conn.responses()[0].body, b"eventually")

    def test_exception_answers_500_runs_error_hook_logs_and_keeps_serving(self):
        s = self.make(["ErrorWatcher", "Boom", "Hello"])
        conn = s.connect()
        conn.request("GET", "/first")
        r = conn.responses()[0]
        self.assertEqual(r.status, 500)
        self.assertEqual(hookplugins.ErrorWatcher.errors, [("boom", "fixup")])
        failures = [e for e in s.events if e.get("log_failure") is not None]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["plugin"], "boom")
        self.assertEqual(failures[0]["log_level"], LogLevel.critical)
        self.assertIn("kaboom", failures[0]["log_failure"].getTraceback())
        # The server carries on: a new connection is served.
        self.assertEqual(s.get("/second").status, 500)
        s2 = self.make(["Hello"])
        self.assertEqual(s2.get("/ok").status, 200)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_failed_deferred_answers_500(self):
        s = self.make(["BoomLater", "Hello"])
        conn = s.connect()
        conn.request("GET", "/x")
        hookplugins.pending.pop().errback(ValueError("late failure"))
        self.assertEqual(conn.responses()[0].status, 500)
        self.flushLoggedErrors(ValueError)

    def test_a_bad_result_is_a_plugin_error(self):
        s = self.make(["BadResult", "Hello"])
        self.assertEqual(s.get("/x").status, 500)
        [event] = [e for e in s.events if e.get("log_failure") is not None]
        self.assertEqual(event["plugin"], "bad_result")
        from axkit.hooks import BadHookResult

        self.assertEqual(len(self.flushLoggedErrors(BadHookResult)), 1)

    def test_a_bad_result_through_a_deferred_is_a_plugin_error(self):
        s = self.make(["BoomLater", "Hello"])
        conn = s.connect()
        conn.request("GET", "/x")
        hookplugins.pending.pop().callback("yes please")
        self.assertEqual(conn.responses()[0].status, 500)
        [event] = [e for e in s.events if e.get("log_failure") is not None]
        self.assertEqual(event["plugin"], "boom_later")
        from axkit.hooks import BadHookResult

        self.assertEqual(len(self.flushLoggedErrors(BadHookResult)), 1)

    def test_a_status_through_a_deferred_is_answered(self):
        s = self.make(["BoomLater", "Hello"])
        conn = s.connect()
        conn.request("GET", "/x")
        hookplugins.pending.pop().callback(418)
        self.assertEqual(conn.responses()[0].status, 418)

    def test_inner_scope_plugins_run_first_and_see_inner_values(self):
        s = self.make(
            [],
            "Plugin tests.hookplugins.Recorder\n"
            "Plugin tests.hookplugins.Hello\n"
            "<Location /in>\n  RecorderTag inner\n</Location>\n",
        )
        s.get("/in/x")
        s.get("/out")
        tags = {(path, tag) for tag, hook, path in hookplugins.seen if hook == "fixup"}
        self.assertEqual(tags, {("/in/x", "inner"), ("/out", "outer")})

    def test_pipelined_responses_leave_in_order_when_the_first_is_async(self):
        s = self.make(
            [],
            "Plugin tests.hookplugins.Hello\n"
            "<Location /slow>\nPlugin tests.hookplugins.Later\n</Location>\n",
        )
        conn = s.connect()
        conn.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
        conn.methods += ["GET", "GET"]
        self.assertEqual(conn.responses(), [])
        hookplugins.pending.pop().callback("slow one")
        bodies = [r.body for r in conn.responses()]
        self.assertEqual(bodies, [b"slow one", b"hello /fast"])
