"""The SteppedBridge (axkit's reactor stepping the app's asyncio loop) in
memory: a request's task runs from the poll hook (the default), or takes
its first step at once, inside the response hook (``eager``); one that
waits goes on from the poll hook either way."""

import asyncio

from twisted.trial import unittest

from axkit.testing import MemorySite
from tests.asgiapps import eager

CONFIG = """Listen tcp:0:interface=127.0.0.1
Plugin asgi
ASGILifespan off
ASGIAlias /echo tests.asgiapps.eager:echo
ASGIAlias /gated tests.asgiapps.eager:gated
ASGIAlias / tests.asgiapps.eager:app
"""


class _Reactor:
    """What SteppedBridge asks of axkit's reactor: its poll hook is run by
    ``turns()``, as the reactor runs it before each poll."""

    def __init__(self):
        self.hooks = []
        self.readers = {}

    def add_poll_hook(self, hook):
        self.hooks.append(hook)

    def remove_poll_hook(self, hook):
        self.hooks.remove(hook)

    def add_raw_reader(self, fd, reader):
        self.readers[fd] = reader

    def remove_raw_reader(self, fd):
        del self.readers[fd]

    def turns(self, most=20):
        for _ in range(most):
            if not any([hook() for hook in self.hooks]):
                return


class SteppedBridgeTests(unittest.TestCase):
    eager = False

    def setUp(self):
        import axkit.asgi.bridge as bridges
        import axkit.plugins.asgi as plugin_module

        self.reactor = _Reactor()
        bridge = bridges.SteppedBridge(self.reactor, eager=self.eager)
        self.loop = bridge.loop
        self.patch(bridges, "_BRIDGE", bridge)
        self.patch(plugin_module, "_APPS", {})
        eager.SEEN.clear()
        eager.GATE.clear()
        self.site = MemorySite(CONFIG, route_logs=False)
        self.addCleanup(self.site.close)
        self.addCleanup(self.loop.close)
        self.addCleanup(bridge.stop)
        self.site.config.plugins["asgi"].startup(self.site.config, self.site.clock)

    def test_answered_from_the_poll_hook(self):
        conn = self.site.connect()
        conn.request("GET", "/one")
        if not self.eager:
            self.assertEqual(conn.responses(), [])  # (queued for the reactor's turn)
            self.reactor.turns()
        # Eager: no turn of the loop yet, the app ran inside the response hook.
        [response] = conn.responses()
        self.assertEqual((response.status, response.body), (200, b"/one"))
        [(task, loop, var)] = eager.SEEN
        self.assertIsInstance(task, asyncio.Task)  # (current_task() is its Task)
        self.assertTrue(task.done())
        self.assertIs(loop, self.loop)
        self.assertEqual(var, "unset")
        self.assertIsNone(asyncio._get_running_loop())  # (put back)
        self.assertEqual(asyncio.all_tasks(self.loop), set())

    def test_each_request_its_own_task_and_context(self):
        conn = self.site.connect()
        conn.request("GET", "/one")
        self.reactor.turns()
        conn.request("GET", "/two")
        self.reactor.turns()
        self.assertEqual([r.body for r in conn.responses()], [b"/one", b"/two"])
        (task1, _, var1), (task2, _, var2) = eager.SEEN
        self.assertIsNot(task1, task2)
        self.assertEqual((var1, var2), ("unset", "unset"))  # (the first's set() stayed in its task)

    def test_pipelined_requests_answered_in_order(self):
        conn = self.site.connect()
        conn.send(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        self.reactor.turns()
        self.assertEqual([r.body for r in conn.responses()], [b"/a", b"/b", b"/c"])
        self.assertEqual(len({id(task) for task, _, _ in eager.SEEN}), 3)

    def test_an_app_that_waits_for_the_body_goes_on_from_the_poll_hook(self):
        conn = self.site.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        self.reactor.turns()
        self.assertEqual(conn.responses(), [])
        conn.send(b"world")
        self.reactor.turns()
        [response] = conn.responses()
        self.assertEqual(response.body, b"helloworld")

    def test_an_app_waiting_on_a_future_answers_when_it_is_set(self):
        conn = self.site.connect()
        conn.request("GET", "/gated")
        self.reactor.turns()
        self.assertEqual(conn.responses(), [])
        self.assertEqual(len(asyncio.all_tasks(self.loop)), 1)
        eager.GATE["future"].set_result(None)
        self.reactor.turns()
        [response] = conn.responses()
        self.assertEqual(response.body, b"late")
        self.assertEqual(asyncio.all_tasks(self.loop), set())

    def test_a_client_gone_while_the_app_waits(self):
        conn = self.site.connect()
        conn.request("GET", "/gated")
        self.reactor.turns()
        conn.lose()
        eager.GATE["future"].set_result(None)
        self.reactor.turns()
        self.assertEqual(conn.responses(), [])
        self.assertEqual(asyncio.all_tasks(self.loop), set())  # (its send() raised: it ended)


class EagerSteppedBridgeTests(SteppedBridgeTests):
    """The same with each task's first step taken at once (AXKIT_ASGI_EAGER=1)."""

    eager = True

    def test_chosen_by_the_environment(self):
        import axkit.asgi.bridge as bridges

        self.patch(bridges.os, "environ", {"AXKIT_ASGI_EAGER": "1"})
        bridge = bridges.bridge_for(_Reactor())
        self.addCleanup(bridge.loop.close)
        self.assertEqual(bridge.start_task, bridge.loop.start_task)
        self.patch(bridges.os, "environ", {})
        bridge = bridges.bridge_for(_Reactor())
        self.addCleanup(bridge.loop.close)
        self.assertEqual(bridge.start_task, bridge.loop.queue_task)
