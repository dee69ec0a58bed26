"""Small plugins used by the config, trace and logging tests (loaded by dotted path)."""

import json

from twisted.internet.task import deferLater

from axkit.config import APPEND, MAP, Directive, many, string
from axkit.hooks import DECLINED, DONE, OK
from axkit.log import PluginLogger


class Recorder:
    """Notes its name in request.notes["order"] at fixup."""

    def hook_fixup(self, request, conf):
        request.notes.setdefault("order", []).append(self.name)
        return DECLINED


class Outer(Recorder):
    name = "outer"


class Middle(Recorder):
    name = "middle"


class Inner(Recorder):
    name = "inner"


class MapToFile:
    """uri_translation: filename = DocumentRoot + path (no disk access)."""

    name = "maptofile"

    def hook_uri_translation(self, request, conf):
        request.filename = conf.document_root.rstrip("/") + request.path
        return OK


class Report:
    """Answers with a JSON report of what the request's scope holds."""

    name = "report"
    directives = [
        Directive("Color", string, default="none", doc="A replaced value."),
        Directive("Tags", many(string), merge=APPEND, doc="Values that add up."),
        Directive("Pair", (string, string), merge=MAP, doc="Keyed values."),
    ]

    def hook_response(self, request, conf):
        body = json.dumps(
            {
                "order": request.notes.get("order", []),
                "color": conf.color,
                "tags": [t for line in conf.tags for t in line],
                "pairs": conf.pair,
                "server": request.server.label(),
                "plugins": [p.name for p in conf.plugins],
            }
        ).encode()
        request.send(200, body, "application/json")
        return DONE


class Slow:
    """A response hook that answers through a Deferred after 2 s of (fake) time."""

    name = "slow"
    log = PluginLogger("slow")

    def hook_response(self, request, conf):
        reactor = request.channel.factory.reactor

        def answer():
            self.log.info("slow answer for {path}", path=request.path, request=request)
            request.send(200, b"late\n", "text/plain")
            return DONE

        return deferLater(reactor, 2.0, answer)


class Boom:
    """Raises in hook_response."""

    name = "boom"

    def hook_response(self, request, conf):
        raise ValueError("kaboom")


class Catcher:
    """A logging hook that keeps every event it sees."""

    name = "catcher"
    seen = []

    def hook_logging(self, event, conf):
        Catcher.seen.append((event, conf))
        return DECLINED


class ClashA:
    name = "clash_a"
    directives = [Directive("Shared", string)]


class ClashB:
    name = "clash_b"
    directives = [Directive("Shared", string)]


class Hold:
    """hook_response waits until the test fires Hold.release (in-flight requests)."""

    name = "hold"
    waiting = []

    def hook_response(self, request, conf):
        from twisted.internet.defer import Deferred

        d = Deferred()

        def answer(_):
            request.send(200, f"{conf.color}\n".encode(), "text/plain")
            return DONE

        d.addCallback(answer)
        Hold.waiting.append(d)
        return d


class Doorman:
    """connect and disconnect hooks that decline."""

    name = "doorman"

    def hook_connect(self, channel, conf):
        return DECLINED

    def hook_disconnect(self, channel, conf):
        return DECLINED
