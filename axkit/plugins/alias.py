"""alias: Apache's mod_alias -- Alias, AliasMatch, Redirect, RedirectMatch.

    Alias /icons/ /usr/share/icons/
    AliasMatch ^/manual/(\\w+)/(.*)$ /srv/manual/$1/html/$2
    Redirect permanent /old http://example.com/new
    RedirectMatch 301 ^/blog/(\\d+)$ /posts/$1
    Redirect gone /retired

As in Apache, in the uri_translation phase: every Redirect/RedirectMatch
line is tried first, then every Alias/AliasMatch line, each list in config
order (a <Server>'s lines before the global ones), the first match
winning.  A prefix matches whole path segments: ``Alias /icons`` matches
/icons and /icons/a.png, not /iconsx; ``Alias /icons/`` does not match
/icons.  ``Redirect`` keeps the rest of the path and the query (unless its
URL has a query of its own).

An Alias target is served with DocumentRoot's rules, the target standing
in for DocumentRoot: the uri_to_file plugin's mapping (DirectoryIndex, the
301 for a folder without its slash, PATH_INFO, dot files, Options
FollowSymLinks and AllowSymlinksOutsideRoot, all relative to the target)
is run with the target as its root.  For AliasMatch the root is the
target's text before its first ``$N`` (up to the last ``/``): a
substitution that climbs out of it (``..``) is refused (403).
"""

import os
import re
from urllib.parse import quote

from axkit.config import PREPEND, SERVER_ONLY, ConfigError, Directive, regex, url_path
from axkit.hooks import DECLINED, OK
from axkit.http.paths import prefix_match
from axkit.http.request import slash_redirect
from axkit.log import PluginLogger

log = PluginLogger("alias")

STATUS_WORDS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_PATH_SAFE = "/:@!$&'()*+,;=~"
_SUBST = re.compile(r"\$(\d)|\\(.)", re.S)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def substitute(template, match, escape=None):
    """``template`` with $0..$9 replaced by ``match``'s groups, a backslash
    escaping the next character (Apache's ap_pregsub; ``&`` is literal)."""

    def one(m):
        if m.group(1) is not None:
            n = int(m.group(1))
            value = match.group(n) if n <= (match.re.groups or 0) else ""
            value = value or ""
            return escape(value) if escape is not None else value
        return m.group(2)

    return _SUBST.sub(one, template)


def _file_path(word, ctx):
    """A filesystem path possibly holding $N; relative to the config file."""
    return word if os.path.isabs(word) else os.path.join(ctx.base_dir, word)


_file_path.label = "PATH"


def _is_url(word):
    return _SCHEME.match(word) is not None


class AliasRule:
    def __init__(self, pattern, target, regex_rule):
        self.pattern = pattern  # a URL prefix or a compiled regex
        self.target = target
        self.regex = regex_rule
        if regex_rule:
            static = target.split("$", 1)[0]
            self.root = static.rstrip("/") if static.endswith("/") else os.path.dirname(static)
        else:
            self.root = None

    def __str__(self):
        if self.regex:
            return f"AliasMatch {self.pattern.pattern} {self.target}"
        return f"Alias {self.pattern} {self.target}"

    __repr__ = __str__


class RedirectRule:
    def __init__(self, status, pattern, url, regex_rule, name):
        self.status = status
        self.pattern = pattern
        self.url = url
        self.regex = regex_rule
        self.name = name

    def __str__(self):
        pattern = self.pattern.pattern if self.regex else self.pattern
        return " ".join(str(w) for w in (self.name, self.status, pattern, self.url or "")).rstrip()

    __repr__ = __str__


def _redirect_parser(name, use_regex, fixed_status=None):
    """Apache's add_redirect_internal: [STATUS] URL-PATH|REGEX [URL]."""

    def parse(words, ctx):
        words = list(words)
        status = fixed_status
        if status is None:
            status = 302
            if words and words[0].lower() in STATUS_WORDS:
                status = STATUS_WORDS[words.pop(0).lower()]
            elif words and words[0].isdigit():
                status = int(words.pop(0))
                if not 100 <= status <= 599:
                    raise ConfigError(f"{name}: invalid status code {status}")
        if not words or len(words) > 2:
            what = "REGEX" if use_regex else "URL-PATH"
            raise ConfigError(
                f"{name} takes {what} URL"
                if fixed_status
                else f"{name} takes [STATUS] {what} [URL], got {len(words)} "
                "argument(s) after the status"
            )
        pattern, url = words[0], (words[1] if len(words) == 2 else None)
        if use_regex:
            pattern = regex(pattern, ctx)
        elif not pattern.startswith("/"):
            raise ConfigError(f"{name}: the URL-path must start with '/', got {pattern!r}")
        if 300 <= status <= 399:
            if url is None:
                raise ConfigError(f"{name}: URL to redirect to is missing")
            if not _is_url(url) and not url.startswith("/"):
                raise ConfigError(
                    f"{name} to non-URL {url!r} (expected http://... or a path starting with '/')"
                )
        elif url is not None:
            raise ConfigError(
                f"{name}: a URL is not valid with status {status} (only 3xx redirects take one)"
            )
        return RedirectRule(status, pattern, url, use_regex, name)

    return parse


class _RedirectDirective(Directive):
    USAGE = {
        "Redirect": "[STATUS] URL-PATH [URL]",
        "RedirectMatch": "[STATUS] REGEX [URL]",
        "RedirectPermanent": "URL-PATH URL",
        "RedirectTemp": "URL-PATH URL",
    }

    def __init__(self, name, use_regex, fixed_status=None, **kwargs):
        Directive.__init__(self, name, scopes=SERVER_ONLY, **kwargs)
        self._parse = _redirect_parser(name, use_regex, fixed_status)

    @property
    def usage(self):
        return f"{self.name} {self.USAGE[self.name]}"

    def parse(self, words, ctx):
        return self._parse(words, ctx)


class _AliasDirective(Directive):
    def parse(self, words, ctx):
        pattern, target = Directive.parse(self, words, ctx)
        return AliasRule(pattern, target, self.key == "aliasmatch")


class _Rooted:
    """A Conf seen with another DocumentRoot (an Alias target's)."""

    def __init__(self, conf, root):
        self._conf = conf
        self.document_root = root

    def __getattr__(self, name):
        return getattr(self._conf, name)


class Alias:
    """Alias, AliasMatch, Redirect, RedirectMatch (Apache's mod_alias)."""

    name = "alias"
    # (Before the application mounts too, as mod_alias runs before mod_wsgi.)
    run_before = ("wsgi", "asgi", "uri_to_file", "mime_map", "serve_file", "serve_dir")
    directives = [
        _AliasDirective(
            "Alias",
            (url_path, _file_path),
            scopes=SERVER_ONLY,
            merge=PREPEND,
            doc="Alias URL-PATH PATH: serve URLs under URL-PATH from PATH (a folder "
            "or a file), with DocumentRoot's rules. First match in config "
            "order; a <Server>'s lines come before the global ones.",
        ),
        _AliasDirective(
            "AliasMatch",
            (regex, _file_path),
            scopes=SERVER_ONLY,
            into="Alias",
            merge=PREPEND,
            doc="AliasMatch REGEX PATH: as Alias, PATH may use $1..$9.",
        ),
        _RedirectDirective(
            "Redirect",
            False,
            merge=PREPEND,
            doc="Redirect [STATUS] URL-PATH URL: answer URLs under URL-PATH with a "
            "redirect to URL plus the rest of the path and the query. STATUS: "
            "permanent (301), temp (302, the default), seeother (303), gone (410, "
            "no URL) or a number. Tried before every Alias.",
        ),
        _RedirectDirective(
            "RedirectMatch",
            True,
            into="Redirect",
            merge=PREPEND,
            doc="RedirectMatch [STATUS] REGEX URL: URL may use $1..$9.",
        ),
        _RedirectDirective(
            "RedirectPermanent",
            False,
            301,
            into="Redirect",
            merge=PREPEND,
            doc="RedirectPermanent URL-PATH URL: Redirect permanent.",
        ),
        _RedirectDirective(
            "RedirectTemp",
            False,
            302,
            into="Redirect",
            merge=PREPEND,
            doc="RedirectTemp URL-PATH URL: Redirect temp.",
        ),
    ]

    def __init__(self):
        from axkit.plugins.uri_to_file import URIToFile

        self.files = URIToFile()  # its mapping, run with an Alias target as root
        self._rooted = {}

    def wants_hook(self, hook, conf):
        if hook == "uri_translation":
            return bool(conf.alias or conf.redirect)
        return True

    def hook_uri_translation(self, request, conf):
        path = request.path
        for rule in conf.redirect:
            status = self._redirect(request, rule, path)
            if status is not None:
                return status
        for rule in conf.alias:
            if rule.regex:
                m = rule.pattern.search(path)
                if m is None:
                    continue
                wanted = substitute(rule.target, m)
                real = os.path.normpath(wanted)
                if wanted.endswith("/") and not real.endswith("/"):
                    real += "/"  # a folder asked for with its slash
                root = rule.root or "/"
                if real.rstrip("/") != root.rstrip("/") and not real.startswith(
                    root.rstrip("/") + "/"
                ):
                    log.error(
                        "{path}: AliasMatch gives {real}, outside {root} -> 403",
                        path=path,
                        real=real,
                        root=root,
                        request=request,
                    )
                    return 403
                return self._map(request, conf, root.rstrip("/"), real[len(root.rstrip("/")) :])
            n = prefix_match(rule.pattern, path)
            if n is None:
                continue
            rest = path[n:]
            if rule.pattern.endswith("/"):
                rest = "/" + rest
            target = rule.target
            if os.path.isdir(target) or target.endswith("/"):
                return self._map(request, conf, target.rstrip("/"), rest)
            # A file: its folder is the root.
            folder, name = os.path.split(target)
            return self._map(request, conf, folder, "/" + name + rest)
        return DECLINED

    def _redirect(self, request, rule, path):
        if rule.regex:
            m = rule.pattern.search(path)
            if m is None:
                return None
            url = (
                substitute(rule.url, m, lambda v: quote(v, safe=_PATH_SAFE))
                if rule.url is not None
                else None
            )
        else:
            n = prefix_match(rule.pattern, path)
            if n is None:
                return None
            url = rule.url + quote(path[n:], safe=_PATH_SAFE) if rule.url is not None else None
        if url is not None and 300 <= rule.status <= 399:
            if not _is_url(url) and not url.startswith("/"):
                log.error(
                    "cannot redirect {path} to {url}: not an absolute URL or path -> 500",
                    path=path,
                    url=url,
                    request=request,
                )
                return 500
            if request.query is not None and "?" not in url:
                url += "?" + request.query
            request.response_headers.set("Location", url)
        return rule.status

    def _map(self, request, conf, root, rest):
        """uri_to_file's mapping of ``rest`` under ``root``."""
        if not rest:
            # The target itself, named without a slash: a folder gets the
            # slash (as uri_to_file does below DocumentRoot).
            return slash_redirect(request) if os.path.isdir(root or "/") else 404
        key = (conf, root)
        rooted = self._rooted.get(key)
        if rooted is None:
            if len(self._rooted) > 4096:
                self._rooted.clear()
            rooted = self._rooted[key] = _Rooted(conf, root or "/")
        saved = request.path
        request.path = rest
        try:
            result = self.files.hook_uri_translation(request, rooted)
        finally:
            request.path = saved
        if result == 301:
            # A folder without its slash: the client's URL gets the slash.
            request.response_headers.remove("Location")
            return slash_redirect(request)
        if result is OK or result is DECLINED:
            return OK
        return result
