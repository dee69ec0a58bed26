"""How a directive is declared: name, argument types, scopes, default, merging.

The core and every plugin declare their directives with the same class::

    Directive("ExpiresDefault", duration, scopes=ANY, doc="...")
    Directive("AddType", (mimetype, many(string)), merge=MAP, ...)

``args`` is one type (exactly one word), a tuple of types (one word each;
``many(t)`` as the last one takes the remaining words, at least one;
``optional(t)`` as the last may be left out), or ``RAW`` for the list of
words as given.  The value of one occurrence is the converted word, or a
tuple of converted words.

A section directive is written as a block, ``<RequireAll> ... </RequireAll>``::

    Directive("RequireAll", (), section=parse_body, into="Require")

``section(value of the tag's words, nodes inside, ctx)`` gives its value;
``into`` stores it in another directive's list, in config order.
"""

import enum
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError
from .types import ArgLike, ArgType, Context

if TYPE_CHECKING:
    from .parser import Node

# Where a directive may appear.
GLOBAL: Final = "global"  # outside any section
SERVER: Final = "server"  # inside <Server>
LOCATION: Final = "location"  # inside <Location> or <LocationMatch>
FILES: Final = "files"  # inside <Files>
ANY: Final[frozenset[str]] = frozenset({GLOBAL, SERVER, LOCATION, FILES})
SERVER_ONLY: Final[frozenset[str]] = frozenset({GLOBAL, SERVER})
NOT_FILES: Final[frozenset[str]] = frozenset({GLOBAL, SERVER, LOCATION})

SCOPE_OF_SECTION: dict[str, str] = {
    "global": GLOBAL,
    "server": SERVER,
    "location": LOCATION,
    "locationmatch": LOCATION,
    "files": FILES,
}

# How an inner scope's value combines with the outer one.
REPLACE: Final = "replace"  # inner wins; once per scope
APPEND: Final = "append"  # values add up, outer first; may repeat
MAP: Final = "map"  # occurrences give (key, value) pairs; inner keys win; may repeat
PREPEND: Final = "prepend"  # values add up, inner scope first; may repeat (Apache's Alias
# lists: a <Server>'s entries are tried before the global ones)
REPLACE_LIST: Final = "replace_list"  # a scope's occurrences form one list, and an inner
# scope's list replaces the outer's; may repeat (Apache's Require)
# Kept as a list per scope:
LIST_MERGES: Final[tuple[str, ...]] = (APPEND, MAP, PREPEND, REPLACE_LIST)


class _Raw(enum.Enum):
    RAW = "RAW"

    def __repr__(self) -> str:
        return "RAW"


# ``args=RAW``: the occurrence's value is the list of words as given.
RAW: Final = _Raw.RAW


class many:
    """The remaining words (at least one), each converted by ``type``."""

    def __init__(self, type: ArgLike) -> None:
        self.type: ArgLike = type

    @property
    def label(self) -> str:
        return f"{getattr(self.type, 'label', 'VALUE')}..."


class optional:
    """A last argument that may be left out (value None then)."""

    def __init__(self, type: ArgLike, default: Any = None) -> None:
        self.type: ArgLike = type
        self.default: Any = default

    @property
    def label(self) -> str:
        return f"[{getattr(self.type, 'label', 'VALUE')}]"


# One argument of a declaration: a type, or many()/optional() of one; the
# spec is one of these or a tuple of them.
Arg = ArgLike | many | optional
ArgSpec = Arg | tuple[Arg, ...]
# An argument once declared (Directive.args): the type with its label set.
DeclaredArg = ArgType[Any] | many | optional


def attr_name(name: str) -> str:
    """DocumentRoot -> document_root; LimitRequestBody -> limit_request_body."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


class Directive:
    """One config directive and everything the config system needs to know."""

    def __init__(
        self,
        name: str,
        args: ArgSpec | _Raw | None = None,
        *,
        scopes: str | Iterable[str] = ANY,
        default: Any = None,
        merge: str = REPLACE,
        repeat: bool | None = None,
        doc: str = "",
        attr: str | None = None,
        to_items: Callable[[Any], Iterable[tuple[Any, Any]]] | None = None,
        check: Callable[[Any], object] | None = None,
        section: "Callable[[Any, list[Node], Context], Any] | None" = None,
        into: str | None = None,
    ) -> None:
        if args is None:
            args = string_type()
        self.name: str = name
        self.key: str = name.lower()
        # The spec with every type normalised (str -> string, a label set).
        self.args: DeclaredArg | tuple[DeclaredArg, ...] | _Raw = _normalise_args(name, args)
        if isinstance(scopes, str):
            scopes = {scopes}
        self.scopes: frozenset[str] = frozenset(scopes)
        unknown = self.scopes - ANY
        if unknown or not self.scopes:
            raise TypeError(
                f"Directive {name!r}: scopes must be a non-empty set of "
                f"GLOBAL, SERVER, LOCATION, FILES (got {sorted(scopes)!r})"
            )
        if merge not in (REPLACE,) + LIST_MERGES:
            raise TypeError(
                f"Directive {name!r}: merge must be REPLACE, APPEND, MAP, "
                f"PREPEND or REPLACE_LIST, got {merge!r}"
            )
        self.merge: str = merge
        # Repeatable within one scope: the list merges are by default; a
        # repeatable REPLACE directive keeps the last occurrence.
        self.repeat: bool = merge in LIST_MERGES if repeat is None else bool(repeat)
        self.doc: str = doc
        self.attr: str = attr or attr_name(name)
        self.to_items = to_items
        self.check = check
        if default is None and merge in (APPEND, PREPEND, REPLACE_LIST):
            default = ()
        if default is None and merge == MAP:
            default = {}
        self.default: Any = default
        # A section directive is written <Name args> ... </Name>: its value
        # is section(value of the args, the nodes inside, ctx), the nodes
        # being the parser's DirectiveNode/SectionNode (name or kind, args,
        # children, file, line).  ``into`` names another directive of the
        # same owner whose list this one's occurrences join, in config order
        # (Require lines and <RequireAll> sections make one list).
        self.section = section
        self.into: str | None = into.lower() if into else None
        self.owner: str | None = None  # set by the registry: "core" or a plugin name

    def parse_section(self, words: list[str], nodes: "list[Node]", ctx: Context) -> Any:
        """The value of one <Name words> section holding ``nodes``."""
        # (only called for a section directive: self.section is set)
        return self.section(self.parse(words, ctx), nodes, ctx)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Directive({self.name!r})"

    @property
    def usage(self) -> str:
        if self.section is not None:
            if self.args is RAW:
                return f"<{self.name} ...> ... </{self.name}>"
            spec = self.args if isinstance(self.args, tuple) else (self.args,)
            return "<" + " ".join([self.name] + [t.label for t in spec]) + f"> ... </{self.name}>"
        if self.args is RAW:
            return f"{self.name} ..."
        spec = self.args if isinstance(self.args, tuple) else (self.args,)
        return " ".join([self.name] + [t.label for t in spec])

    def parse(self, words: list[str], ctx: Context) -> Any:
        """Convert one occurrence's words to its value (raises ConfigError)."""
        value: Any
        if self.args is RAW:
            value = list(words)
        elif isinstance(self.args, tuple):
            value = tuple(self._convert_all(self.args, words, ctx))
        else:
            value = self._convert_all((self.args,), words, ctx)[0]
        if self.check is not None:
            self.check(value)
        return value

    def _convert_all(
        self, spec: tuple[DeclaredArg, ...], words: list[str], ctx: Context
    ) -> list[Any]:
        values: list[Any] = []
        i = 0
        for position, t in enumerate(spec):
            last = position == len(spec) - 1
            if isinstance(t, many):
                if not last:
                    raise TypeError("many() must be the last argument")
                if i >= len(words):
                    raise self._usage_error(words)
                values.append(tuple(_convert(t.type, w, ctx) for w in words[i:]))
                i = len(words)
            elif isinstance(t, optional):
                if i < len(words):
                    values.append(_convert(t.type, words[i], ctx))
                    i += 1
                else:
                    values.append(t.default)
            else:
                if i >= len(words):
                    raise self._usage_error(words)
                values.append(_convert(t, words[i], ctx))
                i += 1
        if i != len(words):
            raise self._usage_error(words)
        return values

    def _usage_error(self, words: list[str]) -> ConfigError:
        return ConfigError(
            f"{self.name} takes {self._arity()}, got {len(words)} (usage: {self.usage})"
        )

    def _arity(self) -> str:
        spec = self.args if isinstance(self.args, tuple) else (self.args,)
        low = sum(1 for t in spec if not isinstance(t, optional))
        if any(isinstance(t, many) for t in spec):
            return f"at least {low} argument{'s' if low != 1 else ''}"
        high = len(spec)
        if low == high:
            return f"{low} argument{'s' if low != 1 else ''}"
        return f"{low} to {high} arguments"

    def items(self, value: Any) -> Iterable[tuple[Any, Any]]:
        """The (key, value) pairs one MAP occurrence contributes."""
        if self.to_items is not None:
            return self.to_items(value)
        return [value]


def _convert(t: Any, word: str, ctx: Context) -> Any:
    return t(word, ctx)


def string_type() -> ArgType[str]:
    from .types import string

    return string


def _normalise_args(
    name: str, args: ArgSpec | _Raw
) -> DeclaredArg | tuple[DeclaredArg, ...] | _Raw:
    """Check a declaration's argument spec; accept str/int/bool for our types."""
    if args is RAW:
        return args
    from .types import BUILTIN_TYPES

    spec = args if isinstance(args, tuple) else (args,)
    out: list[DeclaredArg] = []
    t: Any  # the type as declared, then as normalised
    wrapper: many | optional | None
    for position, t in enumerate(spec):
        wrapper = None
        if isinstance(t, (many, optional)):
            wrapper, t = t, t.type
        t = BUILTIN_TYPES.get(t, t)
        if not callable(t):
            raise TypeError(
                f"Directive {name!r}: argument {position + 1} must be a type "
                f"such as string, integer, duration (got {t!r})"
            )
        if not hasattr(t, "label"):
            t.label = getattr(t, "__name__", "VALUE").upper()
        if wrapper is not None:
            if isinstance(wrapper, many) and position != len(spec) - 1:
                raise TypeError(f"Directive {name!r}: many() must be the last argument")
            wrapper = (
                type(wrapper)(t, wrapper.default)
                if isinstance(wrapper, optional)
                else type(wrapper)(t)
            )
            t = wrapper
        out.append(t)
    if isinstance(args, tuple):
        return tuple(out)
    return out[0]
