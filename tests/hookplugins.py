"""Small plugins the hook tests load by dotted path (Plugin tests.hookplugins.X)."""

from twisted.internet.defer import Deferred

from axkit.config import Directive, string
from axkit.hooks import DECLINED, DONE, OK

# Deferreds handed out by Later, for the test to fire.
pending = []
# What Recorder saw: (plugin name, hook, path).
seen = []


class Recorder:
    """Records every phase it sees; declines all of them."""

    name = "recorder"
    directives = [Directive("RecorderTag", string, default="outer")]

    def _note(self, hook, request, conf):
        seen.append((conf.recorder_tag, hook, request.path))
        return DECLINED

    def hook_post_read_request(self, request, conf):
        return self._note("post_read_request", request, conf)

    def hook_uri_translation(self, request, conf):
        return self._note("uri_translation", request, conf)

    def hook_fixup(self, request, conf):
        return self._note("fixup", request, conf)

    def hook_response(self, request, conf):
        return self._note("response", request, conf)

    def hook_response_sent(self, request, conf):
        return self._note("response_sent", request, conf)


class Hello:
    """Answers every request with 'hello <path>'."""

    name = "hello"

    def hook_response(self, request, conf):
        request.send(200, f"hello {request.path}", "text/plain")
        return DONE


class Teapot:
    """Refuses access with 418 (a status as a hook result)."""

    name = "teapot"

    def hook_access_control(self, request, conf):
        return 418


class Later:
    """Answers from a Deferred the test fires: the CONTINUATION case."""

    name = "later"

    def hook_response(self, request, conf):
        d = Deferred()
        pending.append(d)

        def answer(text):
            request.send(200, text, "text/plain")
            return DONE

        d.addCallback(answer)
        return d


class LaterDecline:
    """A Deferred firing DECLINED: the chain goes on to the next plugin."""

    name = "later_decline"

    def hook_response(self, request, conf):
        d = Deferred()
        pending.append(d)
        return d


class Boom:
    """Raises in fixup."""

    name = "boom"

    def hook_fixup(self, request, conf):
        raise RuntimeError("kaboom")


class BoomLater:
    """Fails through a Deferred."""

    name = "boom_later"

    def hook_fixup(self, request, conf):
        d = Deferred()
        pending.append(d)
        return d


class ErrorWatcher:
    """Records the error hook's argument."""

    name = "error_watcher"
    errors = []

    def hook_error(self, request, conf, error):
        ErrorWatcher.errors.append((error.plugin_name, error.hook))
        return DECLINED


class BadResult:
    """Returns something that is not a hook result."""

    name = "bad_result"

    def hook_fixup(self, request, conf):
        return "yes please"


class OkThenNothing:
    """Returns OK from response without sending anything yet; sends on a Deferred."""

    name = "ok_later"

    def hook_response(self, request, conf):
        d = Deferred()
        pending.append(d)
        d.addCallback(lambda text: request.send(200, text, "text/plain"))
        return OK
