"""Hook names, the values a hook may return, and the chain runner.

A chain is the tuple of ``(plugin, bound hook method)`` pairs for one hook in
one scope, innermost scope first.  The runner calls them in order until one
returns something other than DECLINED.  A result may be a Deferred, which is
the Twisted-native form of AxKit's CONTINUATION: the chain resumes when it
fires.  The runner stays synchronous (no Deferred allocated) while every
plugin answers synchronously, which is the common case on the hot path.
"""

from collections.abc import Callable, Coroutine, Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from axkit.trace import HookTracer
from axkit.trace import RAISED


class Code:
    """A named hook result, so logs and traces read well."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name: str = name

    def __repr__(self) -> str:
        return self.name


DECLINED: Final = Code("DECLINED")  # not mine: run the next plugin
OK: Final = Code("OK")  # this phase is done
DONE: Final = Code("DONE")  # the plugin has sent the whole response

# What a chain answers: a Code or an HTTP status (100-599).
Result = Code | int
# What a hook method may return: a Result, None (DECLINED), or a Deferred or
# coroutine (``async def``) giving one of those.
HookReturn = Code | int | None | Deferred[Any] | Coroutine[Any, Any, Any]
# One hook's chain in one scope: (plugin, bound hook method), innermost first.
Chain = Sequence[tuple[Any, Callable[..., Any]]]

# The phases of one request, in order.  body_data fires once per piece of
# request body as it arrives (see docs/hooks.md for when).
REQUEST_PHASES: Final[tuple[str, ...]] = (
    "uri_translation",
    "mime_map",
    "access_control",
    "authentication",
    "authorization",
    "fixup",
    "xmlresponse",
    "response",
)

# Every hook a plugin may implement, as hook_<name>.
HOOKS: Final[tuple[str, ...]] = (
    (
        "connect",
        "pre_request",
        "post_read_request",
        "body_data",
    )
    + REQUEST_PHASES
    + (
        "response_sent",
        "disconnect",
        "error",
        "logging",
    )
)


class PluginError(Exception):
    """A plugin raised (or its Deferred failed) inside a hook."""

    def __init__(self, plugin: Any, hook: str, failure: Failure) -> None:
        Exception.__init__(self, plugin, hook, failure)
        self.plugin: Any = plugin
        self.hook: str = hook
        self.failure: Failure = failure

    @property
    def plugin_name(self) -> str:
        return getattr(self.plugin, "name", type(self.plugin).__name__)

    def __str__(self) -> str:
        return (
            f"plugin {self.plugin_name!r} failed in hook_{self.hook}: "
            f"{self.failure.getErrorMessage()}"
        )


class BadHookResult(Exception):
    """A plugin returned something that is not a hook result."""


def check_result(plugin: Any, hook: str, result: Any) -> Result:
    """``result`` as a chain's answer (None is DECLINED); BadHookResult if it
    is not a hook result."""
    if result is None:
        return DECLINED
    if result.__class__ is Code:
        return result
    if isinstance(result, int) and 100 <= result <= 599:
        return result
    raise BadHookResult(
        f"hook_{hook} of plugin {getattr(plugin, 'name', plugin)!r} returned "
        f"{result!r}; expected DECLINED, OK, DONE, an HTTP status, a Deferred or "
        f"a coroutine (async def)"
    )


def is_deferred(result: object) -> TypeGuard[Deferred[Any]]:
    """isinstance(result, Deferred), without the ABC machinery for the
    common results (Deferred's metaclass makes isinstance slow)."""
    cls = result.__class__
    if cls is Code or cls is int or result is None:
        return False
    return cls is Deferred or isinstance(result, Deferred)


def run_chain(
    chain: Chain,
    hook: str,
    args: Sequence[Any],
    tracer: "HookTracer | None" = None,
    start: int = 0,
) -> Result | Deferred[Result]:
    """Run ``chain`` for ``hook`` with ``args``.

    Returns the first non-DECLINED result (DECLINED if all declined), or a
    Deferred firing with it.  A plugin exception is raised (or errbacked) as
    PluginError naming the plugin.  ``tracer(plugin, hook, result, seconds)``
    is called for each plugin that ran, when given.

    This is the innermost loop of every request: the common results (None,
    DECLINED, OK, DONE, a status) are recognised inline, without a call.
    """
    n = len(chain)
    i = start
    while i < n:
        plugin, method = chain[i]
        if tracer is not None:
            started = tracer.start()
        try:
            result = method(*args)
        except Exception:
            if tracer is not None:
                tracer.record(plugin, hook, RAISED, tracer.clock() - started)
            raise PluginError(plugin, hook, Failure())
        cls = result.__class__
        if cls is not Code:
            if result is None:
                result = DECLINED
            elif cls is not int or not 100 <= result <= 599:
                result = settle(
                    chain, i, hook, args, result, tracer, started if tracer is not None else None
                )
                if is_deferred(result):
                    return result
        if tracer is not None:
            tracer.record(plugin, hook, result, tracer.clock() - started)
        if result is not DECLINED:
            return result
        i += 1
    return DECLINED


def settle(
    chain: Chain,
    i: int,
    hook: str,
    args: Sequence[Any],
    result: Any,
    tracer: "HookTracer | None" = None,
    started: float | None = None,
) -> Result | Deferred[Result]:
    """What a chain answers when its plugin ``i`` returned ``result``, which
    is neither None nor a Code nor a status: a Deferred (the chain resumes
    when it fires) or a mistake (PluginError)."""
    plugin = chain[i][0]
    try:
        if result.__class__ is CoroutineType:
            # An ``async def`` hook: run it as a Deferred (it starts at once
            # and may finish synchronously, if it never waited).
            result = Deferred.fromCoroutine(result)
            if result.called and not result.callbacks:
                # Already finished: answer without the Deferred, as a plain
                # hook would (or raise its exception).
                box: list[Any] = []
                result.addBoth(box.append)
                result = box[0]
                if isinstance(result, Failure):
                    result.raiseException()
                if result is None:
                    return DECLINED
                return check_result(plugin, hook, result)
        if is_deferred(result):
            return _continue_later(chain, i, hook, args, tracer, result, started)
        return check_result(plugin, hook, result)
    except Exception:
        raise PluginError(plugin, hook, Failure())


def _continue_later(
    chain: Chain,
    i: int,
    hook: str,
    args: Sequence[Any],
    tracer: "HookTracer | None",
    d: Deferred[Any],
    started: float | None,
) -> Deferred[Result]:
    plugin = chain[i][0]

    def resumed(result: Any) -> Result | Deferred[Result]:
        result = check_result(plugin, hook, result)
        if tracer is not None:
            tracer.record(plugin, hook, result, tracer.clock() - started)
        if result is not DECLINED:
            return result
        return run_chain(chain, hook, args, tracer, i + 1)

    def failed(f: Failure) -> Failure:
        if f.check(PluginError):
            return f
        if tracer is not None:
            tracer.record(plugin, hook, RAISED, tracer.clock() - started)
        return Failure(PluginError(plugin, hook, f))

    d.addCallback(resumed)
    d.addErrback(failed)
    return d
