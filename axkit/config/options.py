"""Apache's ``Options`` directive: per-scope switches shared by several plugins.

One line either lists options outright (``Options ExecCGI Indexes``: the set
is replaced) or adjusts the outer scope's set (``Options +ExecCGI -Indexes``);
mixing both forms on one line is refused, as Apache 2.4 does.  Plugins ask
``has_option(conf, "ExecCGI")``; the effective set is computed once per
distinct chain of occurrences and cached.

As in Apache 2.4, the set a scope starts from is ``FollowSymLinks`` alone:
``Options +Indexes`` keeps following symlinks, while a bare list
(``Options Indexes``) replaces the set and so turns FollowSymLinks off.
"""

from typing import Any

from .errors import ConfigError
from .types import Context, _typed

# One word of an Options line, (sign, Name): ("+", "ExecCGI"); one line's words.
OptionWord = tuple[str, str]
OptionLine = tuple[OptionWord, ...]

KNOWN = (
    "ExecCGI",
    "Indexes",
    "FollowSymLinks",
    "SymLinksIfOwnerMatch",
    "Includes",
    "IncludesNOEXEC",
    "MultiViews",
    "All",
    "None",
)
_BY_LOWER = {name.lower(): name for name in KNOWN}
# "All" as Apache 2.4 means it: everything but MultiViews.
_ALL = frozenset(n for n in KNOWN if n not in ("All", "None", "MultiViews"))
# What is in force where no Options line applies (Apache 2.4's default).
DEFAULT: frozenset[str] = frozenset(("FollowSymLinks",))


@_typed("[+|-]OPTION")
def option_word(word: str, ctx: Context) -> OptionWord:
    """One word of an Options line: [+|-]Name, returned as (sign, Name)."""
    sign = word[0] if word[:1] in ("+", "-") else ""
    name = _BY_LOWER.get(word[len(sign) :].lower())
    if name is None:
        raise ConfigError(f"unknown option {word!r} (known: {', '.join(KNOWN)})")
    if sign and name in ("All", "None"):
        raise ConfigError(f"{word!r}: All and None cannot take + or -")
    return (sign, name)


def check_line(words: OptionLine) -> None:
    signs = {sign != "" for sign, _ in words}
    if len(signs) > 1:
        raise ConfigError(
            "either all options must start with + or -, or none may (Apache 2.4 rule)"
        )


_cache: dict[tuple[OptionLine, ...], frozenset[str]] = {}


def effective_options(occurrences: tuple[OptionLine, ...]) -> frozenset[str]:
    """The set of option names in force after ``occurrences`` (outer first)."""
    cached = _cache.get(occurrences)
    if cached is not None:
        return cached
    current: frozenset[str] = DEFAULT
    for line in occurrences:
        if line and line[0][0] == "":
            current = frozenset()
        for sign, name in line:
            names = _ALL if name == "All" else frozenset() if name == "None" else frozenset((name,))
            if sign == "-":
                current = current - names
            else:
                current = current | names
    if len(_cache) < 4096:
        _cache[occurrences] = current
    return current


def has_option(conf: Any, name: str) -> bool:
    """True when option ``name`` (e.g. "ExecCGI") is on in ``conf``'s scope."""
    return name in effective_options(tuple(getattr(conf, "options", ())))
