"""cgi: run CGI/1.1 programs (RFC 3875) -- Perl, shell, Python, C -- unchanged.

(The plugin class is ~320 lines: its directives' declarations -- a third
of it -- and the four hooks that claim, map and run a program; the run
itself is axkit.cgi.)

uri_translation: a URL under a ScriptAlias names a program (the rest of the
path is PATH_INFO).  response: that program, or a document whose extension
has ``AddHandler cgi-script`` in a scope with ``Options +ExecCGI``, is run
with a clean RFC 3875 environment; its output becomes the response (see
axkit.cgi.run for how every run ends).

cgi runs before uri_to_file, mime_map, serve_file and serve_dir in every scope
(``run_before``), whatever the order of the Plugin lines: as Apache runs
mod_alias and mod_cgi before its core file handler, so a program's source is
never sent as a file.
"""

import os
import weakref

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from axkit._compat import weak_key_data
from axkit.cgi.environ import DEFAULT_PATH, ScopeEnv, build_environ, search_argv
from axkit.cgi.mapping import Refused, document_target, match_alias, may_execute, resolve_alias
from axkit.cgi.run import CGIRun
from axkit.cgi.slots import SLOTS
from axkit.cgi.spool import BodySpool
from axkit.config import (
    ANY,
    APPEND,
    GLOBAL,
    MAP,
    SERVER_ONLY,
    ConfigError,
    Directive,
    count,
    duration,
    flag,
    many,
    optional,
    path,
    string,
    url_path,
)
from axkit.config.options import has_option
from axkit.hooks import DECLINED, DONE, OK
from axkit.http.paths import longer_app_mount, slash_redirect
from axkit.notes import CGI_TARGET

log = Logger(namespace="axkit.cgi")

HANDLER = "cgi-script"
NOTE = CGI_TARGET
# How long a request waits for a CGIMaxProcesses slot before its 503.
SLOT_WAIT = 0.25


def _extension(word, ctx):
    ext = word.lower()
    if not ext.startswith("."):
        ext = "." + ext
    if "/" in ext or len(ext) < 2:
        raise ConfigError(f"expected a file extension like .cgi, got {word!r}")
    return ext


_extension.label = "EXTENSION"


def _handler_name(word, ctx):
    if word.lower() != HANDLER:
        raise ConfigError(f"unknown handler {word!r}: the cgi plugin handles '{HANDLER}' only")
    return HANDLER


_handler_name.label = "HANDLER"


def _env_name(word, ctx):
    if not word or "=" in word or "\x00" in word:
        raise ConfigError(f"expected an environment variable name, got {word!r}")
    return word


_env_name.label = "NAME"


def _interpreter(word, ctx):
    program = path(word, ctx)
    if not os.path.isfile(program) or not os.access(program, os.X_OK):
        raise ConfigError(f"{program} is not an executable file")
    return program


_interpreter.label = "PROGRAM"


def _document_program(filename, conf):
    """Whether the mapped file ``filename`` is a program in this scope: None
    if not, else whether it runs through a CGIInterpreter (True) or is
    exec'd itself (False: AddHandler cgi-script)."""
    interpreters = conf.cgi_interpreter
    if filename is None or not (conf.add_handler or interpreters):
        return None
    ext = os.path.splitext(filename)[1].lower()
    if interpreters and ext in interpreters:
        return True
    return False if conf.add_handler.get(ext) == HANDLER else None


class CGI:
    """Runs CGI/1.1 programs: ScriptAlias, AddHandler cgi-script, nph- scripts."""

    name = "cgi"
    # ScriptAlias must map before uri_to_file does, and an AddHandler program
    # must be run before a file handler sends it as a document.
    # (Before asgi too: a ScriptAlias folder under an ASGIAlias mount is CGI.)
    run_before = ("asgi", "uri_to_file", "mime_map", "serve_file", "serve_dir")
    directives = [
        Directive(
            "ScriptAlias",
            (url_path, path),
            scopes=SERVER_ONLY,
            merge=MAP,
            to_items=lambda v: [(v[0], v[1])],
            doc="Map a URL prefix to a folder of CGI programs (ScriptAlias "
            "/cgi-bin/ /srv/cgi-bin/), or to one program that answers every "
            "URL below the prefix, the rest being PATH_INFO (ScriptAlias "
            "/app /srv/app.cgi). May repeat; the longest prefix wins.",
        ),
        Directive(
            "AddHandler",
            (_handler_name, many(_extension)),
            scopes=ANY,
            merge=MAP,
            to_items=lambda v: [(ext, v[0]) for ext in v[1]],
            doc="AddHandler cgi-script .cgi .pl: run documents with these "
            "extensions as CGI programs where Options +ExecCGI is on "
            "(else 403).",
        ),
        Directive(
            "CGIInterpreter",
            (_interpreter, many(_extension)),
            scopes=ANY,
            merge=MAP,
            to_items=lambda v: [(ext, v[0]) for ext in v[1]],
            doc="CGIInterpreter /usr/bin/php-cgi .php: run documents with these "
            "extensions as CGI programs through this interpreter (its "
            "argv: the interpreter, the file), where Options +ExecCGI is "
            "on (else 403); the file needs no execute bit (lighttpd's "
            "cgi.assign). Also applies to such files under a ScriptAlias.",
        ),
        Directive(
            "SetEnv",
            (_env_name, optional(string, "")),
            scopes=ANY,
            merge=MAP,
            doc="Set a variable in CGI programs' environment (SetEnv NAME value).",
        ),
        Directive(
            "PassEnv",
            many(_env_name),
            scopes=ANY,
            merge=APPEND,
            doc="Copy variables from the server's own environment into CGI "
            "programs' (which otherwise starts clean).",
        ),
        Directive(
            "UnsetEnv",
            many(_env_name),
            scopes=ANY,
            merge=APPEND,
            doc="Remove variables from CGI programs' environment, whatever set "
            "them (SetEnv, PassEnv or a request header's HTTP_*).",
        ),
        Directive(
            "CGITimeout",
            duration,
            scopes=ANY,
            default=60.0,
            doc="How long a CGI program may go without output (and a client "
            "without reading it) before its process group is killed: 504 "
            "if no head was sent, else the response is cut.",
        ),
        Directive(
            "CGIMaxProcesses",
            count,
            scopes={GLOBAL},
            default=128,
            doc="CGI programs running at once across the server; past it: 503 "
            "with Retry-After (0 = no limit).",
        ),
        Directive(
            "CGIPath", string, scopes=ANY, default=DEFAULT_PATH, doc="PATH given to CGI programs."
        ),
        Directive(
            "CGIPassAuth",
            flag,
            scopes=ANY,
            default=False,
            doc="Pass the Authorization header to CGI programs as "
            "HTTP_AUTHORIZATION (Off by default, as Apache: it carries "
            "credentials).",
        ),
    ]

    def __init__(self):
        self._scope_envs = weakref.WeakKeyDictionary()  # Conf -> ScopeEnv
        # Its dict, read directly (WeakKeyDictionary.get is a Python call).
        self._scope_env_data = weak_key_data(self._scope_envs)

    # -- uri_translation: ScriptAlias ------------------------------------------

    def descriptors_reserved(self, conf):
        # Each program running: 3 pipes and a spare report pipe or so.
        return 4 * (getattr(conf, "cgi_max_processes", 0) or 0)

    def hook_uri_translation(self, request, conf):
        notes = request.notes
        if NOTE in notes:
            # A local redirect (an internal GET of another path) is a new
            # request: the program mapped for the first path is not its own.
            del notes[NOTE]
        aliases = conf.script_alias
        if not aliases:
            return DECLINED
        found = match_alias(aliases.items(), request.path)
        if found is None:
            return DECLINED
        if (
            getattr(conf, "asgi_alias", None) or getattr(conf, "wsgi_script_alias", None)
        ) and longer_app_mount(conf, request.path, found[0]):
            return DECLINED  # an application mounted below the programs' prefix
        try:
            target = resolve_alias(found[0], found[1], request.path, conf.cgi_interpreter)
        except Refused as e:
            if e.status == 301:
                return slash_redirect(request)
            return self._refused(request, e)
        request.notes[NOTE] = target
        request.handler = HANDLER
        request.path_info = target.path_info
        # <Files> sections apply to the program's name, as in Apache; then
        # filename is unset again: a file handler later in the chain must not
        # mistake the program for a document and send its source.
        request.filename = target.script
        request.resolve_file()
        request.filename = None
        return OK

    def wants_hook(self, hook, conf):
        """mime_map only where AddHandler or CGIInterpreter are in use."""
        if hook == "mime_map":
            return bool(conf.add_handler or conf.cgi_interpreter)
        return True

    # -- mime_map: AddHandler, CGIInterpreter -----------------------------------

    def hook_mime_map(self, request, conf):
        # As Apache's mod_mime sets r->handler in its type checker: a document
        # that is a program is claimed before fixup, so the file plugins
        # (compress, expires) leave its answer alone.  Refusals (ExecCGI off,
        # not executable) come from the response phase, after access checks.
        if request.handler is None and _document_program(request.filename, conf) is not None:
            request.handler = HANDLER
        return DECLINED

    # -- response ------------------------------------------------------------

    def hook_response(self, request, conf):
        target = request.notes.get(NOTE)
        if target is None:
            # Decided here again, whatever mime_map did: a program's source
            # must never be sent as a file, whichever plugin ended mime_map.
            filename = request.filename
            handler = request.handler
            if handler is not None and handler != HANDLER:
                return DECLINED  # another handler's (SetHandler): not a document
            interpreted = _document_program(filename, conf)
            if interpreted is None:
                if handler is None or filename is None:
                    return DECLINED
                interpreted = False  # SetHandler cgi-script: every file is a program
            request.handler = HANDLER
            st = request.finfo
            if st is None:
                log.warn(
                    "{script}: no such script -> 404",
                    script=filename,
                    request=request,
                    plugin="cgi",
                )
                return 404
            if st.st_mode & 0o170000 != 0o100000:
                # (A folder under SetHandler cgi-script: Apache's "attempt to
                # invoke directory as script".)
                return self._refused(request, Refused(403, "not a regular file", filename))
            if not has_option(conf, "ExecCGI"):
                return self._refused(
                    request, Refused(403, "Options ExecCGI is off in this scope", filename)
                )
            if not interpreted and not may_execute(filename, st):
                return self._refused(request, Refused(403, "not executable", filename))
            target = document_target(request)
        return self.run(request, conf, target)

    def run(self, request, conf, target, spool=None):
        """Start ``target`` for ``request``; OK (answered later), a status, or
        a Deferred of either (waiting a moment for a slot).  A chunked body
        is kept whole first (``spool``), before a slot is taken: a client
        sending slowly holds no CGIMaxProcesses slot while no program runs."""
        if (
            spool is None
            and request.content_length is None
            and "transfer-encoding" in request.headers
        ):
            self._spool_then_run(request, conf, target)
            return OK
        if not SLOTS.take(conf.cgi_max_processes):
            # A program that has sent its answer holds its slot until it has
            # exited and been reaped: a client's next request can come first.
            # Wait a moment for a slot before turning the client away.
            def slot(taken):
                if request.finished:
                    if taken:
                        SLOTS.give()
                    if spool is not None:
                        spool.close()
                    return DONE
                if not taken:
                    if spool is not None:
                        spool.close()
                    return self._full(request, conf, target)
                return self._start_in_slot(request, conf, target, spool)

            return SLOTS.wait(request.reactor, SLOT_WAIT).addCallback(slot)
        return self._start_in_slot(request, conf, target, spool)

    def _start_in_slot(self, request, conf, target, spool):
        try:
            return self._start(request, conf, target, spool)
        except BaseException:
            # Nothing was started: the slot is free again (the failure is
            # the pipeline's 500).
            SLOTS.give()
            if spool is not None:
                spool.close()
            raise

    def _full(self, request, conf, target):
        log.error(
            "{script}: CGIMaxProcesses ({limit}) reached -> 503",
            script=target.script,
            limit=conf.cgi_max_processes,
            request=request,
            plugin="cgi",
        )
        request.response_headers.set("Retry-After", "1")
        return 503

    def _start(self, request, conf, target, spool=None):
        """Start ``target`` with its slot taken (stdin: the ``spool`` of a
        chunked body, or the body as it arrives); OK."""
        scope_env = self._scope_env_data.get(weakref.ref(conf))
        if scope_env is None:
            scope_env = self._scope_envs[conf] = ScopeEnv(conf)
        script = target.script
        env = build_environ(request, scope_env, script, target.script_name, target.path_info)
        interpreters = conf.cgi_interpreter
        interpreter = (
            interpreters.get(os.path.splitext(script)[1].lower()) if interpreters else None
        )
        if interpreter is not None:
            # As lighttpd's cgi.assign: the interpreter and the file, and no
            # indexed-query arguments (a query such as ?-s must never reach
            # an interpreter as an option: php-cgi's CVE-2012-1823).
            argv = [interpreter, script]
        else:
            query = request.query
            # (search_argv's answer for the usual query: none, or with an '='.)
            argv = [script] + search_argv(query) if query and "=" not in query else [script]
        nph = script.rpartition("/")[2].startswith("nph-")
        run = CGIRun(request, script, argv, env, conf.cgi_timeout, nph=nph, executable=interpreter)
        if spool is None:
            run.start()
            return OK
        # A de-chunked body: its length is known now (many programs read
        # exactly CONTENT_LENGTH bytes).
        env["CONTENT_LENGTH"] = str(spool.size)
        data = spool.in_memory()
        if data is not None:
            spool.close()
            run.start(stdin_data=data)
        else:
            # The child gets the spool file as its stdin; ours is closed
            # once the child has its own copy.
            run.start(stdin_file=spool.rewound(), after=spool.close)
        return OK

    def _spool_then_run(self, request, conf, target):
        # A chunked body: keep it until complete, then run with CONTENT_LENGTH.
        spool = BodySpool()

        def complete():
            if request.finished:
                spool.close()
                return
            try:
                self._answer_later(request, self.run(request, conf, target, spool))
            except Exception:
                # (After the response phase: nobody else would answer.)
                log.failure(
                    "{script}: starting the program",
                    script=target.script,
                    request=request,
                    plugin="cgi",
                )
                if not request.finished:
                    request.send_error(500)

        def ended():
            # The request ended before its body did (the client left, or the
            # server answered a broken or stalled body): nothing will run.
            if not request.body_complete:
                spool.close()

        request.when_ended(ended)
        request.stream_body(spool.write, complete)

    def _answer_later(self, request, result):
        """What run() answered, after the response phase has returned OK."""
        if isinstance(result, Deferred):
            result.addCallback(lambda r: self._answer_later(request, r))
        elif isinstance(result, int) and result >= 400 and not request.finished:
            request.send_error(result)

    def _refused(self, request, refused):
        log.error(
            "{script}: {why} -> {status}",
            script=refused.script,
            why=refused.why,
            status=refused.status,
            request=request,
            plugin="cgi",
        )
        return refused.status
