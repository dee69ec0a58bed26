"""Any hook_* may be ``async def``: its coroutine runs as a Deferred, in
every phase, beside plain and Deferred-returning hooks."""

import treq
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.hooks import DECLINED, OK, PluginError, run_chain
from axkit.testing import MemorySite, http_pool, start_server
from tests.asgiapps import asynchooks

CONFIG = """
Listen tcp:0:interface=127.0.0.1
Plugin tests.asgiapps.asynchooks.AsyncTranslate
Plugin tests.asgiapps.asynchooks.AsyncGate
Plugin tests.asgiapps.asynchooks.AsyncFixup
Plugin tests.asgiapps.asynchooks.AsyncAnswer
Plugin tests.asgiapps.asynchooks.Fallback
"""


class RunChainTests(SynchronousTestCase):
    def test_async_hook_without_await_answers_synchronously(self):
        class P:
            name = "p"

            async def hook_fixup(self, request, conf):
                return OK

        result = run_chain(((P(), P().hook_fixup),), "fixup", (None, None))
        self.assertIs(result, OK)

    def test_async_hook_none_declines_to_the_next(self):
        class A:
            async def hook_fixup(self, request, conf):
                return None

        class B:
            def hook_fixup(self, request, conf):
                return 404

        chain = ((A(), A().hook_fixup), (B(), B().hook_fixup))
        self.assertEqual(run_chain(chain, "fixup", (None, None)), 404)

    def test_awaiting_hook_gives_a_deferred(self):
        d = Deferred()

        class A:
            async def hook_fixup(self, request, conf):
                return await d

        result = run_chain(((A(), A().hook_fixup),), "fixup", (None, None))
        self.assertIsInstance(result, Deferred)
        got = []
        result.addCallback(got.append)
        d.callback(DECLINED)
        self.assertEqual(got, [DECLINED])

    def test_raising_without_await_names_the_plugin(self):
        class A:
            name = "raiser"

            async def hook_fixup(self, request, conf):
                raise KeyError("x")

        e = self.assertRaises(
            PluginError, run_chain, ((A(), A().hook_fixup),), "fixup", (None, None)
        )
        self.assertEqual(e.plugin_name, "raiser")
        self.assertTrue(e.failure.check(KeyError))


class PhaseTests(SynchronousTestCase):
    def setUp(self):
        asynchooks.seen.clear()
        self.site = MemorySite(CONFIG, route_logs=False)
        self.addCleanup(self.site.close)

    def test_access_fixup_response(self):
        response = self.site.get("/page")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"async answer /page")
        self.assertEqual(response.header("x-async-fixup"), "yes")
        self.assertEqual(asynchooks.seen, [("access_control", "/page"), ("fixup", "/page")])

    def test_status_from_async_access_control(self):
        self.assertEqual(self.site.get("/secret").status, 403)
        self.assertEqual(asynchooks.seen, [("access_control", "/secret")])

    def test_async_declined_runs_the_next_plugin(self):
        self.assertEqual(self.site.get("/decline").body, b"fallback")

    def test_async_uri_translation_ok(self):
        self.assertEqual(self.site.get("/mine").body, b"async answer /mine")

    def test_waits_on_the_clock(self):
        conn = self.site.connect()
        conn.request("GET", "/page")
        self.assertEqual(conn.responses(), [])  # waiting on deferLater
        self.site.advance(1.0)
        self.assertEqual(conn.responses(), [])  # access done, response waits
        self.site.advance(0.5)
        self.assertEqual(conn.responses()[0].status, 200)

    def test_exception_after_await_is_500_naming_the_plugin(self):
        response = self.site.get("/crash")
        self.assertEqual(response.status, 500)
        self.assertTrue(any("async_answer" in m for m in self.site.messages()))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.site.get("/page").status, 200)


class AsyncioFromHookTests(TestCase):
    """An async hook awaiting asyncio code (an async driver) on a real server."""

    @defer.inlineCallbacks
    def test_on_asyncio(self):
        server = yield start_server("Plugin tests.asgiapps.asynchooks.AsyncioDriver\n")
        self.addCleanup(server.stop)
        r = yield treq.get(server.url("/aio"), pool=http_pool(self))
        self.assertEqual((yield r.content()), b"asyncio answered /aio")
