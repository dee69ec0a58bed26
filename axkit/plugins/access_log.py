"""access_log: one line per response, in common, combined, JSON or your format.

``AccessLog stdout combined`` (the default), ``AccessLog logs/access.log
common``, ``AccessLog logs/access.json json``, or a nickname defined with
``LogFormat "%h %l %u %t \"%r\" %>s %b %D" mine``.  Formats use Apache's
mod_log_config escapes.  Lines are buffered and written at most a second
late (or when 64 KiB have piled up), so logging costs no system call per
request; files are reopened on SIGUSR1 for logrotate.
"""

import json
import re
import time

from axkit.config import MAP, NOT_FILES, SERVER_ONLY, Directive, optional
from axkit.config.errors import ConfigError
from axkit.hooks import DECLINED
from axkit.log import PluginLogger, log_file, open_files

log = PluginLogger("access_log")

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
BUILTIN_FORMATS = {"common": COMMON, "combined": COMBINED}
JSON = "json"

# [the second, its text, the next second]: a compiled format reads the text
# straight from here while its request started within that second.
_time_cache = [-1, "", -1]


def clf_time(now):
    """[10/Oct/2000:13:55:36 +0000] (UTC), cached per second."""
    second = int(now)
    if second != _time_cache[0]:
        _time_cache[1] = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(second))
        _time_cache[0] = second
        _time_cache[2] = second + 1
    return _time_cache[1]


def _escape(value):
    """Apache's escaping of logged strings: quotes, backslashes, controls."""
    if value is None or value == "":
        return "-"
    value = str(value)
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    out = []
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _request_line(r):
    return f"{r.method} {r.target} HTTP/{r.version}"


def _elapsed(r, now):
    return max(0.0, now - r.started)


# What each %-escape produces; each takes (request, now, argument).
_ESCAPES = {
    "a": lambda r, now, arg: r.client_address,
    "h": lambda r, now, arg: r.client_address,
    "l": lambda r, now, arg: "-",
    "u": lambda r, now, arg: r.user,
    "t": lambda r, now, arg: (
        clf_time(r.started) if not arg else "[" + time.strftime(arg, time.gmtime(r.started)) + "]"
    ),
    "r": lambda r, now, arg: _request_line(r),
    "s": lambda r, now, arg: str(r.status),
    "b": lambda r, now, arg: str(r.bytes_sent) if r.bytes_sent else "-",
    "B": lambda r, now, arg: str(r.bytes_sent or 0),
    "D": lambda r, now, arg: str(int(_elapsed(r, now) * 1_000_000)),
    "T": lambda r, now, arg: (
        str(int(_elapsed(r, now)))
        if arg in (None, "s")
        else str(int(_elapsed(r, now) * (1000 if arg == "ms" else 1_000_000)))
    ),
    "U": lambda r, now, arg: r.path if r.path is not None else r.raw_path,
    "q": lambda r, now, arg: "?" + r.query if r.query else "",
    "m": lambda r, now, arg: r.method,
    "H": lambda r, now, arg: f"HTTP/{r.version}",
    "v": lambda r, now, arg: getattr(r.server, "name", None) if r.server else None,
    "V": lambda r, now, arg: r.host or (getattr(r.server, "name", None) if r.server else None),
    "p": lambda r, now, arg: _local_port(r),
    "P": lambda r, now, arg: str(__import__("os").getpid()),
    "f": lambda r, now, arg: r.filename,
    "k": lambda r, now, arg: str(r.connection_requests),
    "i": lambda r, now, arg: r.headers.get(arg.lower()) if arg else None,
    "o": lambda r, now, arg: r.response_headers.get(arg.lower()) if arg else None,
    "n": lambda r, now, arg: r.notes.get(arg) if arg else None,
    "%": lambda r, now, arg: "%",
}
_UNESCAPED = {"%", "t", "q"}  # never turned into "-"


def _local_port(r):
    port = r.local_address[1]
    return "-" if port is None else str(port)


_TOKEN = re.compile(r"%(?:\{([^}]*)\})?([<>]?)([a-zA-Z%])")


# Escapes compiled to an expression of the request ``r`` (str or None):
# the common formats render in one call, without a function per field.
_INLINE = {
    "a": "r.client_address",
    "h": "r.client_address",
    "u": "r.user",
    "r": 'f"{r.method} {r.target} HTTP/{r.version}"',
    "U": "(r.path if r.path is not None else r.raw_path)",
    "m": "r.method",
    "f": "r.filename",
}
# Escapes whose value never needs escaping, as an expression (str or int).
_INLINE_RAW = {
    "l": '"-"',
    "s": "r.status",
    "b": '(r.bytes_sent or "-")',
    "B": "r.bytes_sent",
    "%": '"%"',
}


def _parse_format(fmt):
    """A LogFormat string as a list of literal strings and (fn, arg, raw,
    letter) escapes.  Raises ConfigError naming an unknown escape."""
    parts = []
    pos = 0
    for m in _TOKEN.finditer(fmt):
        if m.start() > pos:
            parts.append(fmt[pos : m.start()])
        arg, _, letter = m.groups()
        fn = _ESCAPES.get(letter)
        if fn is None:
            raise ConfigError(f"unknown LogFormat escape %{letter} in {fmt!r}")
        parts.append((fn, arg, letter in _UNESCAPED, letter))
        pos = m.end()
    stray = fmt.find("%", pos)
    if stray >= 0 or any(isinstance(p, str) and "%" in p for p in parts):
        raise ConfigError(f"incomplete LogFormat escape in {fmt!r}")
    if pos < len(fmt):
        parts.append(fmt[pos:])
    return parts


def compile_format(fmt):
    """Compile an Apache LogFormat string to ``f(request, now) -> line``.

    The format becomes one Python function (as nginx compiles its
    log_format): each escape an expression, every escaped value checked
    for quotes, backslashes and controls in one pass over them all, and
    escaped one by one only when that finds something.  Raises ConfigError
    naming an unknown escape.
    """
    parts = _parse_format(fmt)
    slow = _generic_renderer(parts)
    env = {"_esc": _escape, "clf_time": clf_time, "_slow": slow, "_tc": _time_cache}
    # The line is one f-string over locals: literal text (braces doubled)
    # and {vN} for each value.
    body, template, escaped = [], [], []
    fields_read = False
    for i, part in enumerate(parts):
        if part.__class__ is str:
            template.append(part.replace("{", "{{").replace("}", "}}"))
            continue
        fn, arg, raw, letter = part
        env[f"F{i}"], env[f"A{i}"] = fn, arg
        if raw or letter in _INLINE_RAW:
            if letter == "t" and not arg:
                # The cached second's text, without a call, most of the time.
                expr = "(_tc[1] if _tc[0] <= r.started < _tc[2] else clf_time(r.started))"
            else:
                expr = _INLINE_RAW.get(letter) or f"F{i}(r, now, A{i})"
            body.append(f"    v{i} = {expr}")
            template.append(f"{{v{i}}}")
            continue
        if letter == "i" and arg:
            env[f"A{i}"] = arg.lower()
            if not fields_read:
                # The request's fields by name (Headers' own index), read
                # once for every %{...}i, without a call each.
                body.append("    _h = r.headers")
                body.append("    _ix = _h.fields_by_name()")
                fields_read = True
            body.append(f"    v{i} = (_ix.get(A{i}) if _ix is not None else _h.get(A{i})) or '-'")
        elif letter in _INLINE:
            body.append(f"    v{i} = {_INLINE[letter]} or '-'")
        else:  # any value (a note may be 0): "-" only for None and ""
            body.append(f"    v{i} = F{i}(r, now, A{i})")
            body.append(f"    if v{i} is None or v{i} == '': v{i} = '-'")
        template.append(f"{{v{i}}}")
        escaped.append(f"v{i}")
    lines = ["def render(r, now):", "  try:"]
    lines += body
    if escaped:
        lines.append(f"    seen = ''.join(({', '.join(escaped)},))")
        lines.append("    if not seen.isprintable() or '\"' in seen or '\\\\' in seen:")
        for v in escaped:
            lines.append(f"      {v} = _esc({v})")
    lines.append("    return f" + repr("".join(template) + "\n"))
    lines.append("  except (TypeError, AttributeError):")
    lines.append("    return _slow(r, now)      # a value that is not a string, other fields")
    exec(compile("\n".join(lines), f"<LogFormat {fmt!r}>", "exec"), env)
    render = env["render"]
    # Whether it reads ``now`` (the time the response ended): %D and %T only.
    render.uses_now = any(p.__class__ is not str and p[3] in "DT" for p in parts)
    return render


def _generic_renderer(parts):
    """The field-by-field renderer (any value type)."""

    def render(request, now):
        out = []
        for part in parts:
            if part.__class__ is str:
                out.append(part)
            else:
                fn, arg, raw, _ = part
                value = fn(request, now, arg)
                out.append(value if raw else _escape(value))
        out.append("\n")
        return "".join(out)

    return render


def json_line(request, now):
    """One JSON object per line with the fields of the combined format and more."""
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(request.started)),
        "client": request.client_address,
        "user": request.user,
        "method": request.method,
        "target": request.target,
        "path": request.path,
        "query": request.query,
        "protocol": f"HTTP/{request.version}",
        "host": request.host,
        "server": getattr(request.server, "name", None) if request.server else None,
        "status": request.status,
        "bytes": request.bytes_sent or 0,
        "duration_ms": round(_elapsed(request, now) * 1000, 3),
        "referer": request.headers.get("referer"),
        "user_agent": request.headers.get("user-agent"),
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


def _format_items(value):
    fmt, nickname = value
    return [(nickname.lower(), fmt)]


def _check_format(value):
    compile_format(value[0])


def _format(word, ctx):
    return word


_format.label = "FORMAT"


def _nickname(word, ctx):
    return word


_nickname.label = "NICKNAME"


def _where(word, ctx):
    if word.lower() in ("stdout", "stderr", "off"):
        return word.lower()
    from axkit.config.types import path
    from axkit.log import check_log_path

    full = path(word, ctx)
    check_log_path(full)
    return full


_where.label = "stdout|stderr|off|PATH"


def _check_access_log(value):
    where, fmt = value
    name = fmt.lower()
    if name == JSON or name in BUILTIN_FORMATS or "%" not in fmt:
        return  # a nickname: defined by LogFormat (an unknown one falls back to combined)
    compile_format(fmt)


class AccessLog:
    """Writes one line per response: common, combined, JSON lines or LogFormat."""

    name = "access_log"
    directives = [
        Directive(
            "AccessLog",
            (_where, optional(_format, "combined")),
            scopes=NOT_FILES,
            default=("stdout", "combined"),
            check=_check_access_log,
            doc="Where access lines go and in which format: AccessLog stdout|"
            'stderr|PATH [common|combined|json|NICKNAME|"%h ... format"]. '
            "A relative PATH is taken from the config file's folder; "
            "the default is stdout combined. AccessLog off disables it.",
        ),
        Directive(
            "LogFormat",
            (_format, _nickname),
            scopes=SERVER_ONLY,
            merge=MAP,
            to_items=_format_items,
            check=_check_format,
            doc='Name an access-log format: LogFormat "%h %t \\"%r\\" %>s %D" '
            "mine. Escapes are Apache's (%h %l %u %t %r %>s %b %B %D %T %U "
            "%q %m %H %v %V %p %P %f %k %{Header}i %{Header}o %{note}n %%).",
        ),
    ]

    def __init__(self):
        self._renderers = {}
        self._plans = {}

    def renderer(self, fmt, formats):
        key = (fmt, tuple(sorted(formats.items())) if formats else ())
        r = self._renderers.get(key)
        if r is None:
            name = fmt.lower()
            if name == JSON:
                r = json_line
            elif name in formats:
                r = compile_format(formats[name])
            elif name in BUILTIN_FORMATS:
                r = compile_format(BUILTIN_FORMATS[name])
            elif "%" in fmt:
                r = compile_format(fmt)
            else:
                log.error(
                    "AccessLog format {name!r} is not defined by a LogFormat line; using combined",
                    name=fmt,
                )
                r = compile_format(COMBINED)
            self._renderers[key] = r
        return r

    def startup(self, config, reactor):
        # Every file this config names, opened now: before twistd drops
        # root privileges (-u/-g), so it stays writable after.
        from axkit.log import open_early, scope_values

        open_early([value[0] for value in scope_values(config, "accesslog")], buffered=True)

    def hook_connect(self, channel, conf):
        # Open (create) the server's log file before a response can leave:
        # the engine sends a response at once, ahead of response_sent.
        where = conf.access_log[0]
        if where != "off":
            log_file(where, buffered=True)
        return DECLINED

    def hook_response_sent(self, request, conf):
        # Per merged scope (a Conf is read-only): where and how, found once.
        plan = self._plans.get(conf)
        if plan is None:
            where, fmt = conf.access_log
            render = None if where == "off" else self.renderer(fmt, conf.log_format)
            # (A format without %D or %T never reads the time it ends.)
            plan = (where, render, getattr(render, "uses_now", True))
            if len(self._plans) >= 4096:
                self._plans.clear()
            self._plans[conf] = plan
        where, render, uses_now = plan
        if render is not None:
            f = open_files.get(where)  # (log_file's own first look, without the call)
            if f is None or not f.buffered:
                f = log_file(where, buffered=True)
            f.write(render(request, time.time() if uses_now else 0.0))
        return DECLINED

    def flush(self):
        from axkit.log import flush_all

        flush_all()
