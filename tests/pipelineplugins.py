"""Plugins the pipeline tests load by dotted path (Plugin tests.pipelineplugins.X).

``Script`` hooks every request hook; what it answers for each is set by
the test in ``answers`` before the request (default: DECLINED, and a 200
"hello <path>" from ``response``).  Everything it is asked is noted in
``calls`` as (hook, path, ScriptTag of the scope).
"""

from twisted.internet.defer import Deferred

from axkit.config import Directive, string
from axkit.hooks import DECLINED, DONE

# hook -> a result, LATER (return a Deferred the test fires), or a
# callable(request) returning the result.
answers = {}
calls = []
# (hook, Deferred) handed out for LATER, for the test to fire.
pending = []
# (plugin name, hook) of each PluginError the error hook saw.
errors = []

LATER = "later"

PHASES = (
    "pre_request",
    "post_read_request",
    "uri_translation",
    "mime_map",
    "access_control",
    "authentication",
    "authorization",
    "fixup",
    "xmlresponse",
    "response",
)


def reset():
    answers.clear()
    del calls[:]
    del pending[:]
    del errors[:]


def hello(request):
    request.send(200, f"hello {request.path}", "text/plain")
    return DONE


class Script:
    name = "script"
    directives = [Directive("ScriptTag", string, default="outer")]

    def _answer(self, hook, request, conf):
        calls.append((hook, request.path or request.raw_path, conf.script_tag))
        answer = answers.get(hook, hello if hook == "response" else DECLINED)
        if answer is LATER:
            d = Deferred()
            pending.append((hook, d))
            return d
        if callable(answer):
            return answer(request)
        return answer

    def hook_response_sent(self, request, conf):
        calls.append(("response_sent", request.path, conf.script_tag))

    def hook_error(self, request, conf, error):
        errors.append((error.plugin_name, error.hook))
        return DECLINED


def _phase_method(hook):
    def method(self, request, conf):
        return self._answer(hook, request, conf)

    method.__name__ = "hook_" + hook
    return method


for _hook in PHASES:
    setattr(Script, "hook_" + _hook, _phase_method(_hook))


class Decliner:
    """Declines every phase: loaded with Script, it makes each chain two
    plugins long (the chain runner instead of the direct call)."""

    name = "decliner"


for _hook in PHASES:
    setattr(Decliner, "hook_" + _hook, lambda self, request, conf: None)


class Picky:
    """Hooks fixup and response, but leaves both out where PickyOn is off."""

    name = "picky"
    directives = [Directive("PickyOn", string, default="no")]

    def wants_hook(self, hook, conf):
        return conf.picky_on == "yes"

    def hook_fixup(self, request, conf):
        return DECLINED

    def hook_response(self, request, conf):
        request.send(200, "picky", "text/plain")
        return DONE


class ErrorPage:
    """Sends its own page from the error hook."""

    name = "error_page"

    def hook_error(self, request, conf, error):
        request.send(503, f"sorry: {error.hook}", "text/plain")
        return DONE
