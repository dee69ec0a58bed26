"""xslt: the XML pipeline (AxKit 1's vocabulary) on lxml.

XML files of the scope (text/xml, application/xml, */*+xml) and XML a
plugin hands over (axkit.xslt.hand_over) are transformed by the chain of
``AxAddProcessor`` stylesheets of the chosen style, or by the document's
``<?xml-stylesheet?>``.  Transforms run on a pool of AxThreads threads;
compiled stylesheets and outputs are cached and checked against a fresh
stat of every input on each use, so they are never stale.  See docs/xml.md.
"""

from lxml import etree

from axkit.config import (
    REPLACE_LIST,
    SERVER_ONLY,
    ConfigError,
    Directive,
    count,
    flag,
    one_of,
    path,
    size,
    string,
)
from axkit.config.options import has_option
from axkit.files.listing import xml_listing
from axkit.files.respond import respond_file
from axkit.hooks import DECLINED, DONE
from axkit.log import PluginLogger, scope_values
from axkit.threads import defer_to_pool, has_threads
from axkit.xslt import XML_FILES_NOTE, XML_KEY_NOTE, XML_NOTE, is_xml_type
from axkit.xslt.compression import KEEP_GZIPPED, gzip_choice
from axkit.xslt.output import OutputCache, SourceCache, Unstyled
from axkit.xslt.pool import shared_pool
from axkit.xslt.safety import stat_key
from axkit.xslt.styles import (
    Chains,
    chosen_style,
    href,
    processor_type,
    query_params,
    style_section,
)
from axkit.xslt.stylesheets import Stylesheets
from axkit.xslt.transform import Job, TransformError, work

log = PluginLogger("xslt")
HANDLER = "xslt"
DONE_NOTE = "axkit.xslt.done"
DEFAULT_THREADS = 2


def _at_least_one(value):
    if value < 1:
        raise ConfigError("AxThreads must be at least 1")


class Xslt:
    """Styles XML with XSLT (AxAddProcessor, AxStyleName, xml-stylesheet)."""

    name = "xslt"
    run_before = ("compress", "expires", "serve_file", "serve_dir")
    directives = [
        Directive(
            "AxAddProcessor",
            (processor_type, href),
            merge=REPLACE_LIST,
            doc="text/xsl PATH: one stage of the default style's chain, applied in "
            "order; /PATH is under DocumentRoot, others relative to the config file. "
            "An inner scope's list replaces the outer one.",
        ),
        Directive(
            "AxStyleName",
            string,
            section=style_section,
            into="AxAddProcessor",
            merge=REPLACE_LIST,
            doc="<AxStyleName NAME> AxAddProcessor ... </AxStyleName>: an alternate style.",
        ),
        Directive(
            "AxStyleChooser",
            one_of("querystring", "cookie", "pathinfo", "none"),
            default="none",
            doc="Where the style name comes from: ?style=NAME, the axkit_style "
            "cookie, the path info after the file (/doc.xml/NAME), or nowhere.",
        ),
        Directive(
            "AxIgnoreStylePI",
            flag,
            default=False,
            doc="On: a document's <?xml-stylesheet?> is not used.",
        ),
        Directive(
            "AxPassQueryParams",
            flag,
            default=False,
            doc="On: query parameters become XSLT parameters (always string values).",
        ),
        Directive("AxCache", flag, default=True, doc="Off: transformed output is not kept."),
        Directive(
            "AxCacheSize",
            size,
            scopes=SERVER_ONLY,
            default=32 * 1024 * 1024,
            doc="Bytes of transformed output kept (least recently used go first).",
        ),
        Directive(
            "ErrorStylesheet",
            href,
            doc="PATH (as AxAddProcessor's): a transformation error answers 500 with "
            "<error><uri/><file/><line/><message/></error> styled by this stylesheet.",
        ),
        Directive(
            "AxTraceIntermediate",
            path,
            doc="DIR: each stage's output (and the source, .0) is written there, "
            "named after the request path (for debugging, never in production).",
        ),
        Directive(
            "AxHandleDirs",
            flag,
            default=False,
            doc="On: a directory listing (where serve_dir would list) is styled as "
            "serve_dir's XML <filelist> by the scope's processors.",
        ),
        Directive(
            "AxThreads",
            count,
            scopes=SERVER_ONLY,
            default=DEFAULT_THREADS,
            check=_at_least_one,
            doc="Threads running transformations (lxml releases the GIL); one "
            "pool per process, as large as the largest AxThreads of any <Server>.",
        ),
    ]

    def __init__(self):
        self.stylesheets = Stylesheets()
        self.outputs = OutputCache()
        self.sources = SourceCache()
        self.pool = None
        self.threads = None  # the largest AxThreads of the config (startup)
        self._xml_types = {}  # media type -> is_xml_type()
        self._chains_of = {}  # Conf -> Chains (its styles' file names)

    # -- claiming ---------------------------------------------------------------

    def hook_fixup(self, request, conf):
        if request.handler is None and self._wants_file(request, conf):
            request.handler = HANDLER
        return DECLINED

    def _wants_file(self, request, conf):
        st = request.finfo
        if request.filename is None or st is None or st.st_mode & 0o170000 != 0o100000:
            return False
        mime_type = request.mime_type
        xml = self._xml_types.get(mime_type)
        if xml is None:  # (asked for every file of the scope: found once per type)
            if len(self._xml_types) >= 1024:
                self._xml_types.clear()
            xml = self._xml_types[mime_type] = is_xml_type(mime_type)
        if not xml:
            return False
        return bool(conf.ax_add_processor) or not conf.ax_ignore_style_pi

    # -- answering ----------------------------------------------------------------

    def hook_xmlresponse(self, request, conf):
        notes = request.notes
        if notes.get(XML_NOTE) is not None:
            return self._handed_over(request, conf)
        if request.handler != HANDLER:
            if conf.ax_handle_dirs and request.handler is None:
                return self._directory(request, conf)
            return DECLINED
        method = request.method
        if method != "GET" and method != "HEAD":
            request.response_headers.set("Allow", "GET, HEAD")
            return 405
        style, used_path_info = chosen_style(request, conf.ax_style_chooser)
        if request.path_info and not used_path_info:
            return 404
        return self._transform(request, conf, None, request.filename, style)

    def hook_response(self, request, conf):
        # XML handed over by a plugin whose xmlresponse ran after ours.
        if request.notes.get(XML_NOTE) is not None and not request.notes.get(DONE_NOTE):
            return self._handed_over(request, conf)
        return DECLINED

    def _handed_over(self, request, conf):
        notes = request.notes
        notes[DONE_NOTE] = True
        style, _ = chosen_style(request, conf.ax_style_chooser)
        key = notes.get(XML_KEY_NOTE)
        handed = None if key is None else (key, notes.get(XML_FILES_NOTE, ()))
        return self._transform(request, conf, notes[XML_NOTE], None, style, handed)

    def _directory(self, request, conf):
        """AxHandleDirs: serve_dir's XML listing, styled (AxKit's dir_to_xml)."""
        st = request.finfo
        if request.filename is None or st is None or st.st_mode & 0o170000 != 0o040000:
            return DECLINED
        if request.method not in ("GET", "HEAD") or request.path_info:
            return DECLINED  # serve_dir's answer (405, 404)
        if not (getattr(conf, "directory_listing", False) or has_option(conf, "Indexes")):
            return DECLINED  # not listed here: serve_dir answers 403
        folder, url_path = request.filename, request.path

        def listing():  # run on the worker thread
            return xml_listing(conf, folder, url_path)

        request.response_headers.setdefault("Cache-Control", "no-cache")
        style, _ = chosen_style(request, conf.ax_style_chooser)
        return self._transform(request, conf, listing, None, style)

    def _chains(self, conf):
        chains = self._chains_of.get(conf)
        if chains is None:
            if len(self._chains_of) >= 64:
                self._chains_of.clear()
            chains = self._chains_of[conf] = Chains(conf)
        return chains

    def _transform(self, request, conf, source, filename, style, handed=None):
        """Style ``source`` (None: read ``filename``); ``handed``: (key,
        files) of XML a plugin handed over with a key (cached as a file's)."""
        if conf.ax_style_chooser == "cookie":
            # The same URL answers differently by cookie: tell caches.
            vary = request.response_headers.get("Vary")
            request.response_headers.set("Vary", f"{vary}, Cookie" if vary else "Cookie")
        chains = self._chains(conf)
        style, chain = chains.chain(style)
        if chain is None and conf.ax_ignore_style_pi:
            if source is None:
                return DECLINED  # nothing to apply: the file as it is
            chain = ()
        params = query_params(request.query) if conf.ax_pass_query_params else []
        key = None
        # uri_to_file stat'ed the document for this request already.
        file_key = None if filename is None else stat_key(request.finfo)
        if conf.ax_cache and (filename is not None or handed is not None):
            name = filename if handed is None else ("xmlresponse", handed[0])
            key = (name, chain, style, tuple(params))
            if filename is not None:
                entry = self.outputs.get(key, filename, file_key)
            else:
                entry = self.outputs.get(key)
            if entry is not None:
                if entry.body is None:  # known to have no stylesheet: a plain file
                    request.handler = None
                    return DECLINED
                return self._respond(request, conf, entry)
        job = Job(
            source,
            filename,
            chain,
            {name: etree.XSLT.strparam(value) for name, value in params} if params else {},
            conf.document_root,
            request.path,
            conf.ax_trace_intermediate,
        )
        job.real_root = chains.real_root
        job.error_stylesheet = chains.error_stylesheet
        job.key = key
        if handed is not None:
            job.files = handed[1]
        elif file_key is not None:
            job.data = self.sources.get(filename, file_key)
        extra = (request, conf, key, filename)
        pool = self.pool
        if pool is not None and not pool.joined and pool.reactor is request.reactor:
            return pool.run(work, (job, self.stylesheets), self._done, self._failed, extra)
        d = defer_to_pool(
            request.reactor, lambda: self._pool(request, conf), work, job, self.stylesheets
        )
        d.addCallbacks(
            self._done,
            lambda f: self._failed(f.value, *extra),
            callbackArgs=extra,
        )
        return d

    def startup(self, config, reactor):
        # The transformation threads, started before anything listens (and
        # resized on a reload): as many as the largest AxThreads of any
        # <Server>, so that requests of servers saying different numbers
        # never resize the pool back and forth.
        sizes = scope_values(config, "axthreads")
        if "axthreads" not in config.global_scope.values:
            sizes.append(DEFAULT_THREADS)
        self.threads = max(sizes)
        if has_threads(reactor):  # (not the fake clock of axkit.testing)
            self.pool = shared_pool(reactor, self.threads)

    def _pool(self, request, conf):
        pool = self.pool
        if pool is None or pool.joined:
            pool = self.pool = shared_pool(request.reactor, self.threads or conf.ax_threads)
        return pool

    def _done(self, result, request, conf, key, filename):
        if result.read is not None:
            self.sources.put(filename, result.read)
        if request.finished:
            return DONE  # the client went away (or the engine answered) meanwhile
        if result.status != 200:  # an error page made by ErrorStylesheet
            self._failed(result.error, request, conf, key, filename)
            request.send(result.status, result.body, result.media_type)
            return DONE
        if not result.styled:
            if filename is None:
                request.send(200, bytes(result.body or b""), "application/xml")
                return DONE
            if key is not None:
                self.outputs.put(key, Unstyled(result.deps), conf.ax_cache_size)
            request.send_file(filename)
            return DONE
        if conf.trace_hooks:
            for path, seconds in result.stages:
                log.info(
                    "xslt stage {stylesheet} took {ms:.2f} ms",
                    stylesheet=path,
                    ms=seconds * 1000,
                    request=request,
                )
        entry = result.output
        if entry is None:  # handed over without a key: nothing to name it by
            request.send(200, result.body, result.media_type)
            return DONE
        if key is not None:
            self.outputs.put(key, entry, conf.ax_cache_size)
        return self._respond(request, conf, entry)

    def _respond(self, request, conf, entry):
        """The output as serve_file answers a file (validators, 304/412,
        ranges, HEAD), gzip'd where the compress plugin's Gzip says so."""
        request.mime_type = entry.media_type
        encoding = gzip_choice(request, conf, entry.media_type, entry.size)
        if encoding is None:
            result = respond_file(request, entry, None)
        else:
            result = respond_file(request, entry, None, "gzip", encoding, KEEP_GZIPPED)
        return DONE if result is not None and result.__class__ is not int else result

    def _failed(self, error, request, conf, key, filename):
        if isinstance(error, TransformError):
            log.error("{where}: {detail}", where=error.where, detail=error.message, request=request)
        elif isinstance(error, OSError):
            log.error(
                "{file}: {detail}",
                file=error.filename or filename,
                detail=error.strerror or str(error),
                request=request,
            )
        else:
            raise error  # a bug: the core logs it with its traceback, and answers 500
        return DONE if request.finished else 500
