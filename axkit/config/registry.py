"""The directive registry: every directive the loaded config may use."""

import difflib
from collections.abc import Iterable, Iterator

from .directives import Directive
from .errors import ConfigError


class Registry:
    def __init__(self) -> None:
        self.by_key: dict[str, Directive] = {}

    def add(self, directive: Directive, owner: str) -> None:
        """Register ``directive`` for ``owner`` ("core" or a plugin name)."""
        existing = self.by_key.get(directive.key)
        if existing is not None and existing.owner != owner:
            raise ConfigError(
                f"directive {directive.name!r} is declared by both {existing.owner!r} "
                f"and {owner!r}; one of them must rename it"
            )
        directive.owner = owner
        self.by_key[directive.key] = directive

    def add_all(self, directives: Iterable[Directive], owner: str) -> None:
        for d in directives:
            self.add(d, owner)

    def get(self, name: str) -> Directive | None:
        return self.by_key.get(name.lower())

    def suggest(self, name: str) -> str | None:
        """The registered name closest to ``name``, or None."""
        names = {d.name.lower(): d.name for d in self.by_key.values()}
        close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.75)
        return names[close[0]] if close else None

    def __iter__(self) -> Iterator[Directive]:
        return iter(self.by_key.values())
