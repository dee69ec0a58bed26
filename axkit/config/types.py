"""Argument types for directives.

A type is a callable ``(word, ctx) -> value`` that raises ConfigError with a
message saying what was expected.  ``ctx`` is the Context of the line being
read (its file, so paths resolve relative to the config file).  Each type has
a ``label`` used in usage messages.
"""

import os
import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from .errors import ConfigError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Context:
    """Where a directive is being read: used by types that need a place."""

    __slots__ = ("file", "line", "base_dir")

    def __init__(self, file: str, line: int, base_dir: str) -> None:
        self.file: str = file
        self.line: int = line
        self.base_dir: str = base_dir


class ArgType(Protocol[T_co]):
    """An argument type: ``(word, ctx) -> value``, with a ``label`` for usage
    messages (``string``, ``duration``, ``one_of(...)``...)."""

    label: str

    def __call__(self, word: str, ctx: Context, /) -> T_co: ...


# What a Directive, many() or optional() accepts as a type: one of ours, a
# plugin's own ``(word, ctx) -> value`` function (its label is then made
# from its name), or str, int or bool for string, integer and flag.
ArgLike = Callable[[str, Context], Any] | type[str] | type[int] | type[bool]


def _typed(label: str) -> Callable[[Callable[[str, Context], T]], ArgType[T]]:
    def wrap(fn: Callable[[str, Context], T]) -> ArgType[T]:
        fn.label = label  # type: ignore[attr-defined]
        return cast("ArgType[T]", fn)

    return wrap


@_typed("STRING")
def string(word: str, ctx: Context) -> str:
    return word


@_typed("INTEGER")
def integer(word: str, ctx: Context) -> int:
    try:
        return int(word, 10)
    except ValueError:
        raise ConfigError(f"expected an integer, got {word!r}")


@_typed("N")
def count(word: str, ctx: Context) -> int:
    """A non-negative integer."""
    value = integer(word, ctx)
    if value < 0:
        raise ConfigError(f"expected a number >= 0, got {word!r}")
    return value


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}


@_typed("SIZE")
def size(word: str, ctx: Context) -> int:
    """Bytes, with an optional K, M or G suffix (powers of 1024): 512, 64K, 10M."""
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", word)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ConfigError(f"expected a size like 512, 64K, 10M or 1G, got {word!r}")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


_DURATION_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


@_typed("DURATION")
def duration(word: str, ctx: Context) -> float:
    """Seconds, with an optional unit: 30, 30s, 500ms, 5m, 2h, 1d."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", word.lower())
    if not m or m.group(2) not in _DURATION_UNITS:
        raise ConfigError(f"expected a duration like 30s, 500ms, 5m or 1h, got {word!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


@_typed("On|Off")
def flag(word: str, ctx: Context) -> bool:
    """On/Off (also yes/no, true/false), as True/False."""
    lowered = word.lower()
    if lowered in ("on", "yes", "true"):
        return True
    if lowered in ("off", "no", "false"):
        return False
    raise ConfigError(f"expected On or Off, got {word!r}")


def one_of(*choices: str) -> ArgType[str]:
    """A type accepting one of ``choices`` (case-insensitive); yields the choice."""
    by_lower = {c.lower(): c for c in choices}

    @_typed("|".join(choices))
    def choice(word: str, ctx: Context) -> str:
        try:
            return by_lower[word.lower()]
        except KeyError:
            raise ConfigError(f"expected one of {', '.join(choices)}; got {word!r}")

    return choice


@_typed("PATH")
def path(word: str, ctx: Context) -> str:
    """A filesystem path; a relative one is taken from the config file's folder."""
    return os.path.normpath(os.path.join(ctx.base_dir, os.path.expanduser(word)))


@_typed("REGEX")
def regex(word: str, ctx: Context) -> re.Pattern[str]:
    """A Python regular expression, compiled."""
    try:
        return re.compile(word)
    except re.error as e:
        raise ConfigError(f"bad regular expression {word!r}: {e}")


@_typed("ENDPOINT")
def endpoint(word: str, ctx: Context) -> str:
    """A Twisted server endpoint string; a bare port means tcp:PORT."""
    if word.isdigit():
        word = f"tcp:{word}"
    if word.lower().startswith("systemd:"):
        return word  # the inherited sockets exist only under systemd: checked at listen time
    if word.lower().startswith("ssl:"):
        from axkit.tls import absolute_tls_paths  # axkit's own TLS listener (SNI, reloads)

        return absolute_tls_paths(word, ctx.base_dir)
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, word)
    except Exception as e:  # endpoint parsers raise all sorts
        raise ConfigError(f"bad listening endpoint {word!r}: {e}")
    return word


@_typed("MIMETYPE")
def mimetype(word: str, ctx: Context) -> str:
    if not re.fullmatch(
        r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+"
        r"(\s*;.*)?",
        word,
    ):
        raise ConfigError(f"expected a media type like text/html, got {word!r}")
    return word


@_typed("URL-PATH")
def url_path(word: str, ctx: Context) -> str:
    if not word.startswith("/"):
        raise ConfigError(f"expected a URL path starting with '/', got {word!r}")
    return word


def list_of(type: ArgType[Any] | None = None, sep: str = ",") -> ArgType[tuple[Any, ...]]:
    """One word holding a ``sep``-separated list, each item converted by ``type``
    (default: string): ``Methods GET,HEAD,POST`` gives ("GET", "HEAD", "POST").
    For a list of separate words, use ``many(type)`` instead."""
    item_type = type or string

    @_typed(f"{item_type.label}{sep}...")
    def items(word: str, ctx: Context) -> tuple[Any, ...]:
        parts = [p.strip() for p in word.split(sep)]
        if not all(parts):
            raise ConfigError(
                f"expected a {sep!r}-separated list without empty items, got {word!r}"
            )
        return tuple(item_type(p, ctx) for p in parts)

    return items


# Plain Python types a plugin may write instead of ours.
BUILTIN_TYPES: dict[Any, ArgType[Any]] = {str: string, int: integer, bool: flag}
