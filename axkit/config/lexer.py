"""Split Apache-style config text into logical lines of words.

Rules: a trailing backslash joins a line with the next; a word starting with
``#`` outside quotes starts a comment that runs to the end of the line;
words are separated by blanks; "double" and 'single' quotes group words,
and inside double quotes a backslash escapes the next character.
"""

from .errors import ConfigError


class Line:
    """One logical config line: its words and where it starts."""

    __slots__ = ("words", "file", "line")

    def __init__(self, words: list[str], file: str, line: int) -> None:
        self.words: list[str] = words
        self.file: str = file
        self.line: int = line

    def __repr__(self) -> str:
        return f"Line({self.words!r}, {self.file!r}, {self.line})"


def logical_lines(text, file):
    """Yield (first line number, joined text) for each logical line."""
    pending, start = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.rstrip()
        if start is None:
            start = number
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield start, " ".join(pending)
        pending, start = [], None
    if pending:
        yield start, " ".join(pending)


def split_words(text, file, line):
    words = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "#":
            break
        if c in "\"'":
            quote, i, word = c, i + 1, []
            while True:
                if i >= n:
                    raise ConfigError(f"unterminated {quote} quote", file, line)
                c = text[i]
                if c == "\\" and quote == '"' and i + 1 < n:
                    word.append(text[i + 1])
                    i += 2
                    continue
                if c == quote:
                    i += 1
                    break
                word.append(c)
                i += 1
            if i < n and text[i] not in " \t":
                raise ConfigError(f"expected a space after the closing {quote} quote", file, line)
            words.append("".join(word))
            continue
        start = i
        while i < n and text[i] not in " \t":
            i += 1
        words.append(text[start:i])
    return words


def lex(text: str, file: str) -> list[Line]:
    """Return the non-empty logical lines of ``text`` as Line objects."""
    lines = []
    for number, joined in logical_lines(text, file):
        body = joined.strip()
        if body.startswith("<"):
            # A section tag: <Name args> or </Name>; the ">" is not a word.
            if not body.endswith(">"):
                raise ConfigError(
                    f"section tag {body.split()[0]!r} is missing its closing '>'", file, number
                )
            body = body[:-1]
        words = split_words(body, file, number)
        if words:
            lines.append(Line(words, file, number))
    return lines
