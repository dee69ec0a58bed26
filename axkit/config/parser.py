"""Turn lexed lines into a tree of directives and sections, expanding Include.

The parser knows only the shape of the language (sections nest and close,
Include pulls in files); what each directive means is the registry's job.
"""

import glob
import os

from .errors import ConfigError, ConfigErrors
from .lexer import lex

# Section kinds the language knows, lowercased -> display name.
SECTIONS = {
    "server": "Server",
    "location": "Location",
    "locationmatch": "LocationMatch",
    "files": "Files",
}

MAX_INCLUDE_DEPTH = 16


class DirectiveNode:
    __slots__ = ("name", "args", "file", "line")

    def __init__(self, name: str, args: list[str], file: str, line: int) -> None:
        self.name: str = name
        self.args: list[str] = args
        self.file: str = file
        self.line: int = line

    def __repr__(self) -> str:
        return f"<{self.name} {self.args!r} at {self.file}:{self.line}>"


class SectionNode:
    __slots__ = ("kind", "args", "children", "file", "line")

    def __init__(self, kind: str, args: list[str], file: str, line: int) -> None:
        self.kind: str = kind  # lowercased: server, location, ...
        self.args: list[str] = args
        self.children: list[DirectiveNode | SectionNode] = []
        self.file: str = file
        self.line: int = line

    def __repr__(self) -> str:
        return f"<Section {self.kind} {self.args!r} at {self.file}:{self.line}>"


# A node of the parsed tree: a directive line or a section.
Node = DirectiveNode | SectionNode


def parse_file(path: str) -> SectionNode:
    """Parse the config file at ``path``; raise ConfigErrors listing every error."""
    errors: list[ConfigError] = []
    root = SectionNode("global", [], path, 0)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigErrors([ConfigError(f"cannot read config: {e.strerror}", path, 0)])
    _parse_into(root, text, path, errors, depth=0, seen=(os.path.abspath(path),))
    if errors:
        raise ConfigErrors(sorted(errors, key=_error_order))
    return root


def _error_order(e: ConfigError) -> tuple[str, int]:
    return (str(e.file), e.line or 0)


def parse_string(text: str, name: str = "<string>", base_dir: str | None = None) -> SectionNode:
    """Parse config text; Include paths are relative to ``base_dir`` (or cwd)."""
    errors: list[ConfigError] = []
    root = SectionNode("global", [], name, 0)
    _parse_into(root, text, name, errors, depth=0, seen=(), base_dir=base_dir or os.getcwd())
    if errors:
        raise ConfigErrors(errors)
    return root


def _parse_into(root, text, file, errors, depth, seen, base_dir=None):
    if base_dir is None:
        base_dir = os.path.dirname(os.path.abspath(file))
    try:
        lines = lex(text, file)
    except ConfigError as e:
        errors.append(e)
        return
    stack = [root]
    for line in lines:
        head = line.words[0]
        if head.startswith("</"):
            kind = head[2:].lower()
            current = stack[-1]
            if len(stack) == 1:
                errors.append(
                    ConfigError(f"{head}> without a matching opening section", line.file, line.line)
                )
            elif kind != current.kind:
                errors.append(
                    ConfigError(
                        f"{head}> closes <{SECTIONS.get(current.kind, current.kind)}> "
                        f"opened at line {current.line}",
                        line.file,
                        line.line,
                    )
                )
            else:
                stack.pop()
            continue
        if head.startswith("<"):
            # A section the language does not know may be a plugin's (a
            # section directive, <RequireAll>): the loader decides.
            kind = head[1:].lower() or "?"
            section = SectionNode(kind, line.words[1:], line.file, line.line)
            stack[-1].children.append(section)
            stack.append(section)
            continue
        if head.lower() == "include":
            _include(stack[-1], line, base_dir, errors, depth, seen)
            continue
        stack[-1].children.append(DirectiveNode(head, line.words[1:], line.file, line.line))
    for open_section in stack[1:]:
        errors.append(
            ConfigError(
                f"<{SECTIONS.get(open_section.kind, open_section.kind)}> is never closed",
                open_section.file,
                open_section.line,
            )
        )


def _include(parent, line, base_dir, errors, depth, seen):
    if len(line.words) != 2:
        errors.append(ConfigError("Include takes one path or glob", line.file, line.line))
        return
    pattern = os.path.join(base_dir, line.words[1])
    is_glob = glob.has_magic(pattern)
    paths = sorted(glob.glob(pattern)) if is_glob else [pattern]
    if depth >= MAX_INCLUDE_DEPTH:
        errors.append(ConfigError("Include nested too deeply (a loop?)", line.file, line.line))
        return
    for path in paths:
        real = os.path.abspath(path)
        if real in seen:
            errors.append(
                ConfigError(f"Include loop: {line.words[1]} includes itself", line.file, line.line)
            )
            continue
        if os.path.isdir(path):
            if is_glob:
                continue
            errors.append(
                ConfigError(
                    f"Include {line.words[1]}: is a directory "
                    f"(use {line.words[1].rstrip('/')}/*.conf)",
                    line.file,
                    line.line,
                )
            )
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            errors.append(
                ConfigError(f"Include {line.words[1]}: {e.strerror}", line.file, line.line)
            )
            continue
        _parse_into(parent, text, _display(path), errors, depth + 1, seen + (real,))


def _display(path):
    """A path as short as it reads well in error messages."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path
