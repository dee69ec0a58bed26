"""Config errors that carry the file and line they are about."""

from collections.abc import Iterable
from typing import Self


class ConfigError(Exception):
    """One thing wrong in a config, at ``file:line``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        Exception.__init__(self, message)
        self.message: str = message
        self.file: str | None = file
        self.line: int | None = line

    def located(self, file: str | None, line: int | None) -> Self:
        """This error, placed at file:line unless it already has a place."""
        if self.file is None:
            self.file, self.line = file, line
        return self

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if not self.line:
            # About a whole file (one that cannot be read): no line to name.
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigWarning(ConfigError):
    """Something in a config that loads but may not be what was meant (a
    directive given again in an Include): ``--check`` prints it."""

    def __str__(self):
        if self.file is None:
            return f"warning: {self.message}"
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: warning: {self.message}"


class ConfigErrors(Exception):
    """Every error found in one load, in file order."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        Exception.__init__(self, errors)
        self.errors: list[ConfigError] = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
