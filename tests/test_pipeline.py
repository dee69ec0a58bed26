"""The request driver (axkit.pipeline): the order of its steps, what each
hook result does at each of them, and resuming after a Deferred -- through
the engine, in memory.

Every test runs three ways: ``Script`` alone in each phase (the pipeline
calls the hook method directly), with ``Decliner`` after it (the chain
runner), and with TraceHooks On (the chain runner with a tracer)."""

from twisted.internet.defer import Deferred
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from axkit import phases
from axkit.hooks import DECLINED, DONE, HOOKS, OK
from axkit.testing import MemorySite, load_config
from tests import pipelineplugins as pp
from tests.pipelineplugins import LATER, answers, calls, hello

SCRIPT = "Plugin tests.pipelineplugins.Script\n"

PHASES = [
    "uri_translation",
    "mime_map",
    "access_control",
    "authentication",
    "authorization",
    "fixup",
    "xmlresponse",
    "response",
]


def hooks():
    return [hook for hook, _, _ in calls]


class _PipelineTests:
    extra = ""

    def setUp(self):
        pp.reset()
        self.addCleanup(pp.reset)

    def site(self, more=""):
        site = MemorySite(SCRIPT + self.extra + more)
        self.addCleanup(site.close)
        return site

    def fire(self, result, hook=None):
        got, d = pp.pending.pop(0)
        if hook is not None:
            self.assertEqual(got, hook)
        if isinstance(result, Exception):
            d.errback(result)
        else:
            d.callback(result)

    def failures(self, site):
        return [e for e in site.events if e.get("log_failure") is not None]

    # -- the order of the steps ------------------------------------------------

    def test_every_hook_in_order(self):
        r = self.site().get("/a")
        self.assertEqual((r.status, r.body), (200, b"hello /a"))
        self.assertEqual(hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"])

    def test_pre_request_runs_in_the_server_scope_and_may_rewrite_the_path(self):
        def rewrite(request):
            request.raw_path = "/in" + request.raw_path

        answers["pre_request"] = rewrite
        s = self.site("<Location /in>\n  ScriptTag inner\n</Location>\n")
        r = s.get("/x")
        self.assertEqual(r.body, b"hello /in/x")
        self.assertEqual(calls[0], ("pre_request", "/x", "outer"))
        self.assertEqual(calls[1], ("post_read_request", "/in/x", "inner"))
        self.assertEqual({tag for _, _, tag in calls[1:]}, {"inner"})

    def test_refused_and_bad_requests_are_answered_before_post_read_request(self):
        s = self.site("LimitRequestBody 10\n")
        self.assertEqual(s.request("TRACE", "/a").status, 405)
        self.assertEqual(s.request("CONNECT", "/a").status, 501)
        r = s.request("OPTIONS", "*")
        self.assertEqual((r.status, r.header("Allow")), (200, "GET, HEAD, OPTIONS"))
        self.assertEqual(s.get("/a/../../b").status, 400)
        self.assertEqual(s.request("POST", "/a", body=b"x" * 11).status, 413)
        self.assertEqual(set(hooks()), {"pre_request", "response_sent"})
        self.assertEqual(hooks().count("pre_request"), 5)
        self.assertEqual(s.request("POST", "/a", body=b"x" * 10).status, 200)

    def test_a_finished_request_skips_the_phases_left(self):
        def answer(request):
            request.send(200, "early", "text/plain")
            return OK

        answers["uri_translation"] = answer
        r = self.site().get("/a")
        self.assertEqual(r.body, b"early")
        self.assertEqual(
            hooks(), ["pre_request", "post_read_request", "uri_translation", "response_sent"]
        )

    # -- what a result does ----------------------------------------------------

    def test_ok_from_post_read_request_goes_on_with_the_phases(self):
        answers["post_read_request"] = OK
        r = self.site().get("/a")
        self.assertEqual(r.status, 200)
        self.assertEqual(hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"])

    def test_ok_from_pre_request_goes_on(self):
        answers["pre_request"] = OK
        r = self.site().get("/a")
        self.assertEqual(r.status, 200)
        self.assertEqual(hooks()[:3], ["pre_request", "post_read_request", "uri_translation"])

    def test_ok_from_every_phase_before_response_goes_on(self):
        for hook in PHASES[:-1]:
            answers[hook] = OK
        r = self.site().get("/a")
        self.assertEqual(r.status, 200)
        self.assertEqual(hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"])

    def test_a_status_from_pre_request(self):
        answers["pre_request"] = 403
        r = self.site().get("/a")
        self.assertEqual(r.status, 403)
        self.assertEqual(hooks(), ["pre_request", "response_sent"])

    def test_a_status_from_post_read_request(self):
        answers["post_read_request"] = 400
        self.assertEqual(self.site().get("/a").status, 400)
        self.assertEqual(hooks(), ["pre_request", "post_read_request", "response_sent"])

    def test_a_status_from_a_middle_phase_stops_the_phases(self):
        answers["authentication"] = 401
        r = self.site().get("/a")
        self.assertEqual(r.status, 401)
        self.assertEqual(
            hooks(),
            [
                "pre_request",
                "post_read_request",
                "uri_translation",
                "mime_map",
                "access_control",
                "authentication",
                "response_sent",
            ],
        )

    def test_a_2xx_status_is_sent_as_is(self):
        answers["fixup"] = 204
        r = self.site().get("/a")
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertNotIn("response", hooks())

    def test_405_from_a_phase_gets_allow(self):
        answers["access_control"] = 405
        r = self.site().get("/a")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD, OPTIONS"))

    def test_done_without_a_response_is_500(self):
        answers["fixup"] = DONE
        s = self.site()
        self.assertEqual(s.get("/a").status, 500)
        self.assertNotIn("xmlresponse", hooks())
        [message] = s.messages(level=LogLevel.error)
        self.assertIn("DONE in hook_fixup", message)

    def test_done_without_a_response_from_pre_request_is_500(self):
        answers["pre_request"] = DONE
        s = self.site()
        self.assertEqual(s.get("/a").status, 500)
        self.assertEqual(hooks(), ["pre_request", "response_sent"])
        [message] = s.messages(level=LogLevel.error)
        self.assertIn("DONE in hook_pre_request", message)

    def test_done_from_post_read_request_names_its_hook(self):
        answers["post_read_request"] = DONE
        s = self.site()
        self.assertEqual(s.get("/a").status, 500)
        [message] = s.messages(level=LogLevel.error)
        self.assertIn("DONE in hook_post_read_request", message)

    def test_nobody_answering_is_404_405_or_501(self):
        answers["response"] = DECLINED
        s = self.site()
        self.assertEqual(s.get("/a").status, 404)
        r = s.request("PUT", "/a", body=b"x")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD, OPTIONS"))
        r = s.request("OPTIONS", "/a")
        self.assertEqual((r.status, r.header("Allow")), (204, "GET, HEAD, OPTIONS"))
        self.assertEqual(s.request("BREW", "/a").status, 501)

    def test_ok_from_response_leaves_the_answer_to_the_plugin(self):
        answers["response"] = OK
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.assertEqual(conn.responses(), [])
        self.assertEqual(hooks()[-1], "response")

    # -- resuming after a Deferred -----------------------------------------------

    def test_deferred_from_pre_request_resumes(self):
        for result in (DECLINED, OK, None):
            pp.reset()
            answers["pre_request"] = LATER
            s = self.site("<Location /in>\n  ScriptTag inner\n</Location>\n")
            conn = s.connect()
            conn.request("GET", "/in/x")
            self.assertEqual((conn.responses(), hooks()), ([], ["pre_request"]))
            self.fire(result, "pre_request")
            [r] = conn.responses()
            self.assertEqual(r.body, b"hello /in/x")
            self.assertEqual(
                hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"]
            )
            self.assertEqual(calls[1][2], "inner")

    def test_deferred_from_pre_request_then_refused(self):
        answers["pre_request"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("TRACE", "/a")
        self.fire(DECLINED)
        self.assertEqual(conn.responses()[0].status, 405)
        self.assertEqual(hooks(), ["pre_request", "response_sent"])

    def test_deferred_status_from_pre_request(self):
        answers["pre_request"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(429)
        self.assertEqual(conn.responses()[0].status, 429)
        self.assertEqual(hooks(), ["pre_request", "response_sent"])

    def test_deferred_from_post_read_request_resumes(self):
        for result in (DECLINED, OK):
            pp.reset()
            answers["post_read_request"] = LATER
            s = self.site()
            conn = s.connect()
            conn.request("GET", "/a")
            self.assertEqual(hooks(), ["pre_request", "post_read_request"])
            self.fire(result, "post_read_request")
            self.assertEqual(conn.responses()[0].status, 200)
            self.assertEqual(
                hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"]
            )

    def test_deferred_from_a_middle_phase_resumes_with_the_next(self):
        for result in (DECLINED, OK):
            pp.reset()
            answers["authorization"] = LATER
            s = self.site()
            conn = s.connect()
            conn.request("GET", "/a")
            self.assertEqual(hooks()[-1], "authorization")
            self.fire(result, "authorization")
            self.assertEqual(conn.responses()[0].status, 200)
            self.assertEqual(
                hooks(), ["pre_request", "post_read_request"] + PHASES + ["response_sent"]
            )

    def test_deferred_status_from_a_middle_phase(self):
        answers["access_control"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(403, "access_control")
        self.assertEqual(conn.responses()[0].status, 403)
        self.assertEqual(hooks()[-2:], ["access_control", "response_sent"])

    def test_deferred_done_without_a_response_is_500(self):
        answers["mime_map"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(DONE, "mime_map")
        self.assertEqual(conn.responses()[0].status, 500)
        self.assertNotIn("access_control", hooks())

    def test_deferred_declined_from_response_is_404(self):
        answers["response"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(DECLINED, "response")
        self.assertEqual(conn.responses()[0].status, 404)

    def test_deferred_ok_from_response_leaves_the_answer_to_the_plugin(self):
        answers["response"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(OK, "response")
        self.assertEqual(conn.responses(), [])

    def test_files_apply_after_a_deferred_uri_translation(self):
        def mapped(request):
            request.filename = "/srv/doc.txt"
            d = Deferred()
            pp.pending.append(("uri_translation", d))
            return d

        answers["uri_translation"] = mapped
        s = self.site("<Files *.txt>\n  ScriptTag files\n</Files>\n")
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(DECLINED, "uri_translation")
        self.assertEqual(conn.responses()[0].status, 200)
        tags = {hook: tag for hook, _, tag in calls}
        self.assertEqual(
            (tags["uri_translation"], tags["mime_map"], tags["response"]),
            ("outer", "files", "files"),
        )

    def test_files_apply_to_the_phases_after_uri_translation(self):
        def mapped(request):
            request.filename = "/srv/doc.txt"

        answers["uri_translation"] = mapped
        s = self.site("<Files *.txt>\n  ScriptTag files\n</Files>\n")
        s.get("/a")
        tags = {hook: tag for hook, _, tag in calls}
        self.assertEqual(
            (tags["uri_translation"], tags["mime_map"], tags["response"]),
            ("outer", "files", "files"),
        )

    def test_a_deferred_firing_after_the_client_left_goes_no_further(self):
        for hook in ("pre_request", "uri_translation"):
            pp.reset()
            answers[hook] = LATER
            s = self.site()
            conn = s.connect()
            conn.request("GET", "/a")
            conn.lose()
            self.fire(DECLINED, hook)
            walked = ["pre_request", "post_read_request", "uri_translation"]
            self.assertEqual(
                [h for h in hooks() if h != "response_sent"], walked[: walked.index(hook) + 1]
            )

    # -- failures --------------------------------------------------------------

    def test_an_exception_after_a_deferred(self):
        def boom(request):
            raise RuntimeError("kaboom")

        answers["uri_translation"] = LATER
        answers["fixup"] = boom
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(DECLINED, "uri_translation")
        self.assertEqual(conn.responses()[0].status, 500)
        self.assertEqual(pp.errors, [("script", "fixup")])
        [failure] = self.failures(s)
        self.assertEqual(failure["plugin"], "script")
        self.assertNotIn("response", hooks())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_an_exception_after_a_deferred_pre_request(self):
        def boom(request):
            raise RuntimeError("kaboom")

        answers["pre_request"] = LATER
        answers["post_read_request"] = boom
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(OK, "pre_request")
        self.assertEqual(conn.responses()[0].status, 500)
        self.assertEqual(pp.errors, [("script", "post_read_request")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_an_exception_in_pre_request(self):
        def boom(request):
            raise RuntimeError("kaboom")

        answers["pre_request"] = boom
        s = self.site()
        self.assertEqual(s.get("/a").status, 500)
        self.assertEqual(pp.errors, [("script", "pre_request")])
        self.assertEqual(hooks(), ["pre_request", "response_sent"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_failed_deferred_from_a_middle_phase(self):
        answers["mime_map"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(ValueError("late"), "mime_map")
        self.assertEqual(conn.responses()[0].status, 500)
        self.assertEqual(pp.errors, [("script", "mime_map")])
        self.assertNotIn("access_control", hooks())
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_an_error_page_from_the_error_hook_is_kept(self):
        def boom(request):
            raise RuntimeError("kaboom")

        answers["authorization"] = LATER
        answers["fixup"] = boom
        s = self.site("Plugin tests.pipelineplugins.ErrorPage\n")
        conn = s.connect()
        conn.request("GET", "/a")
        self.fire(DECLINED, "authorization")
        r = conn.responses()[0]
        self.assertEqual((r.status, r.body), (503, b"sorry: fixup"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_an_internal_error_after_a_deferred_is_500(self):
        answers["fixup"] = LATER
        s = self.site()
        conn = s.connect()
        conn.request("GET", "/a")
        # Not a plugin's fault: the core breaks while acting on the result.
        s.pipeline.send_status = None
        self.fire(403, "fixup")
        self.assertEqual(conn.responses()[0].status, 500)
        [failure] = self.failures(s)
        self.assertIn("internal error", failure["log_format"])
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    # -- internal redirects -----------------------------------------------------

    def test_internal_redirect_runs_the_steps_again_from_the_path(self):
        def redirect(request):
            if request.path == "/first":
                request.channel.handler.internal_redirect(request, "/in/second?q=1")
                return DONE
            return hello(request)

        answers["response"] = redirect
        s = self.site("<Location /in>\n  ScriptTag inner\n</Location>\n")
        r = s.request("POST", "/first", body=b"abc")
        self.assertEqual((r.status, r.body), (200, b"hello /in/second"))
        self.assertEqual(
            hooks(),
            ["pre_request", "post_read_request"]
            + PHASES
            + ["post_read_request"]
            + PHASES
            + ["response_sent"],
        )
        self.assertEqual(calls[-1], ("response_sent", "/in/second", "inner"))

    def test_internal_redirect_to_a_refused_target(self):
        def redirect(request):
            request.channel.handler.internal_redirect(request, "/../x")
            return DONE

        answers["response"] = redirect
        self.assertEqual(self.site().get("/first").status, 400)


class DirectCallTests(_PipelineTests, SynchronousTestCase):
    """One plugin per phase: the pipeline calls it directly."""


class ChainTests(_PipelineTests, SynchronousTestCase):
    """Two plugins per phase: the chain runner."""

    extra = "Plugin tests.pipelineplugins.Decliner\n"


class TracedTests(_PipelineTests, SynchronousTestCase):
    """TraceHooks On: the chain runner with a tracer, and the same results."""

    extra = "TraceHooks On\n"

    def test_the_trace_records_each_hook(self):
        answers["access_control"] = 403
        s = self.site()
        s.get("/a")
        self.assertEqual(
            [(hook, result) for hook, _, result, _ in s.traces()],
            [
                ("pre_request", DECLINED),
                ("post_read_request", DECLINED),
                ("uri_translation", DECLINED),
                ("mime_map", DECLINED),
                ("access_control", 403),
                ("response_sent", DECLINED),
            ],
        )


class PlanTests(SynchronousTestCase):
    """axkit.phases: the steps, and the plan of a scope."""

    def test_the_steps_in_order(self):
        self.assertEqual(
            phases.STEPS,
            (
                "pre_request",
                "admit",
                "post_read_request",
                "uri_translation",
                "files",
                "mime_map",
                "access_control",
                "authentication",
                "authorization",
                "fixup",
                "xmlresponse",
                "response",
                "end",
            ),
        )

    def test_without_plugins_only_the_core_steps_are_visited(self):
        plan = phases.plan({hook: () for hook in HOOKS})
        self.assertEqual(len(plan), len(phases.STEPS))
        names = [plan[i][1] for i in range(len(plan))]
        self.assertEqual(names, ["admit", "admit", "files", "files", "files"] + ["end"] * 8)
        self.assertEqual(plan[phases.PRE_REQUEST], (phases.ADMIT + 1, "admit", None, None))
        self.assertEqual(plan[phases.END], (phases.END + 1, "end", None, None))

    def test_one_plugin_is_called_directly_two_through_the_chain(self):
        one = ((object(), len),)
        two = one + ((object(), repr),)
        chains = {hook: () for hook in HOOKS}
        chains.update(pre_request=one, fixup=two)
        plan = phases.plan(chains)
        fixup = phases.STEPS.index("fixup")
        self.assertEqual(plan[0], (1, "pre_request", one, len))
        self.assertEqual(plan[phases.FILES + 1], (fixup + 1, "fixup", two, None))
        self.assertEqual(plan[fixup + 1][1], "end")

    def test_wants_hook_leaves_a_plugin_out_of_a_scope(self):
        config = load_config(
            "Plugin tests.pipelineplugins.Picky\n<Location /on>\n  PickyOn yes\n</Location>\n"
        )
        server = config.servers[0]
        off, on = server.resolve("/off"), server.resolve("/on/x")
        self.assertEqual((off.chains["fixup"], off.chains["response"]), ((), ()))
        self.assertEqual({step[1] for step in off.plan}, {"admit", "files", "end"})
        self.assertEqual(
            {step[1] for step in on.plan}, {"admit", "files", "fixup", "response", "end"}
        )

    def test_a_plugin_left_out_does_not_answer(self):
        site = MemorySite(
            "Plugin tests.pipelineplugins.Picky\n<Location /on>\n  PickyOn yes\n</Location>\n"
        )
        self.addCleanup(site.close)
        self.assertEqual(site.get("/off").status, 404)
        self.assertEqual(site.get("/on/x").body, b"picky")
