"""access: who may see what -- Apache 2.4's Require, and Basic authentication.

The vocabulary of mod_authz_core, mod_authz_host, mod_authz_user,
mod_authz_groupfile, mod_auth_basic and mod_authn_file::

    <Location /private>
        AuthType Basic
        AuthName "Private area"
        AuthUserFile conf/users.htpasswd
        Require valid-user
    </Location>

Several Require lines in one scope mean any one suffices (Apache's implicit
<RequireAny>); <RequireAll>, <RequireAny> and <RequireNone> nest.  An inner
scope's Require lines replace the outer's.  The evaluation is Apache's, in
three steps (its access_checker_ex, check_user_id and auth_checker hooks):

- ``access_control``: the rules are evaluated with no user.  Granted: the
  request goes on, nobody is asked for a password.  Denied: 403.  Only a
  user can decide (``valid-user``, ``user``, ``group`` in the way): the
  next two steps run.
- ``authentication``: Basic credentials are checked against AuthUserFile
  (401 with ``WWW-Authenticate`` when absent or wrong).  bcrypt runs in a
  thread, two at a time; a success is remembered for a minute.
- ``authorization``: the rules again, with the user: 401 unless granted.

Each result of a rule is one of Apache's four (granted, denied, neutral,
denied-no-user), combined as mod_authz_core combines them.  Failures are
logged as Apache logs them (``AH01617: user bob: authentication failure
for "/private/": Password Mismatch``), in Apache's line shape, so
fail2ban's apache-auth filter reads axkit's error log as it is.
"""

import base64
import binascii
import time

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads

from axkit.auth import htpasswd
from axkit.auth.require import (
    GRANTED,
    NO_USER,
    NeedHost,
    Section,
    client_ip,
    double_reverse,
    evaluate,
    parse_rule,
    parse_section,
)
from axkit.config import ANY, REPLACE_LIST, ConfigError, Directive, one_of, path, string
from axkit.hooks import DECLINED, OK, is_deferred
from axkit.log import PluginLogger

log = PluginLogger("access")

NOTE = "axkit.access"  # "granted" or "auth": what access_control found
USER_NOTE = "axkit.access.user"  # the authenticated user, as bytes
HOST_NOTE = "axkit.access.host"  # the client's double-reverse host name (or None)

MAX_CREDENTIALS = 4096  # base64 characters of a Basic token
HOST_TTL = 60.0  # seconds a double-reverse lookup is kept
THREADS = 2  # bcrypt checks at once (each takes a core)


class RequireDirective(Directive):
    """``Require`` lines: each is a Rule; at the top of a scope they form an
    implicit <RequireAny>, where a negative rule has no effect."""

    usage = "Require [not] RULE [ARGS...]"

    def parse(self, words, ctx):
        rule = parse_rule(words)
        if rule.negate:
            raise ConfigError(
                "negative Require directive has no effect in <RequireAny> "
                "directive (put it in a <RequireAll> with a positive rule)"
            )
        return rule


def _section_directive(op):
    def body(value, nodes, ctx):
        section = parse_section(op, nodes, ctx)
        if op == "none":
            raise ConfigError(
                "<RequireNone> directive has no effect in <RequireAny> "
                "directive (put it in a <RequireAll>)"
            )
        return section

    name = Section.NAMES[op]
    return Directive(
        name,
        (),
        scopes=ANY,
        section=body,
        into="Require",
        merge=REPLACE_LIST,
        doc={
            "all": "every rule inside must grant (none may deny).",
            "any": "one rule inside suffices.",
            "none": "no rule inside may grant (inside <RequireAll>).",
        }[op]
        + " Joins the scope's Require list.",
    )


class Facts:
    """What the rules look at, computed on demand."""

    def __init__(self, plugin, request, conf, user):
        self.plugin = plugin
        self.request = request
        self.conf = conf
        self.user = user
        self.method = request.method
        self._address = False

    def address(self):
        if self._address is False:
            self._address = client_ip(self.request)
        return self._address

    def hostname(self):
        notes = self.request.notes
        if HOST_NOTE in notes:
            return notes[HOST_NOTE]
        address = self.address()
        if address is None:
            return None
        known = self.plugin.hosts.get(str(address))
        if known is not None and known[1] > time.monotonic():
            notes[HOST_NOTE] = known[0]
            return known[0]
        raise NeedHost(str(address))

    def groups(self):
        group_file = self.conf.auth_group_file
        if group_file is None:
            raise htpasswd.Unavailable("Require group needs AuthGroupFile")
        return htpasswd.group_file(group_file).get().get(self.user, frozenset())


def log_item(value):
    """``value`` (str or bytes) safe for one log line, as Apache's
    ap_escape_logitem: control bytes, non-ASCII, quote and backslash as \\xHH."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    out = []
    for b in value:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _then(result, fn):
    if is_deferred(result):
        return result.addCallback(fn)
    return fn(result)


class Access:
    """Require (Apache 2.4), Basic authentication from htpasswd files."""

    name = "access"
    directives = [
        RequireDirective(
            "Require",
            scopes=ANY,
            merge=REPLACE_LIST,
            doc="all granted|all denied|ip ADDR/NET...|host NAME...|local|valid-user|"
            "user NAME...|group NAME...|method M...; 'not' before a rule negates it "
            "(inside <RequireAll>). Several lines: any one suffices. An inner "
            "scope's lines replace the outer's.",
        ),
        _section_directive("all"),
        _section_directive("any"),
        _section_directive("none"),
        Directive(
            "AuthType",
            one_of("Basic", "None"),
            scopes=ANY,
            doc="Basic: ask for a user name and password (RFC 7617) when a "
            "Require rule needs a user. None: no authentication.",
        ),
        Directive(
            "AuthName", string, scopes=ANY, doc="The realm shown by the browser's password prompt."
        ),
        Directive(
            "AuthUserFile",
            path,
            scopes=ANY,
            doc="An htpasswd file (bcrypt, $apr1$ or {SHA} hashes), re-read when it changes.",
        ),
        Directive(
            "AuthGroupFile", path, scopes=ANY, doc="Lines 'group: user user ...' for Require group."
        ),
    ]

    def __init__(self):
        self.hosts = {}  # ip -> (double-reverse name or None, until)
        self._implicit = {}  # id(Require list) -> (that list, its implicit <RequireAny>)
        self.verified = htpasswd.VerifiedCache()
        self._slow = defer.DeferredSemaphore(THREADS)
        self._dns = defer.DeferredSemaphore(4)

    def wants_hook(self, hook, conf):
        if hook in ("access_control", "authentication", "authorization"):
            return bool(conf.require) or conf.auth_type == "Basic"
        return True

    # -- access_control: the rules, with no user --------------------------------

    def hook_access_control(self, request, conf):
        if not conf.require:
            if conf.auth_type == "Basic":
                # Apache's AH01627: fail closed rather than serve a folder
                # its admin believes protected.
                log.error(
                    "AuthType Basic is set for {path} but no Require applies: "
                    "answered 500 (add Require valid-user)",
                    path=log_item(request.path),
                    request=request,
                )
                return 500
            return DECLINED
        return _then(
            self._decide(request, conf, None), lambda result: self._userless(request, conf, result)
        )

    def _userless(self, request, conf, result):
        if result.__class__ is int:
            return result
        if result == GRANTED:
            request.notes[NOTE] = "granted"
            return DECLINED
        if result == NO_USER:
            request.notes[NOTE] = "auth"
            return DECLINED
        target = request.filename
        log.error(
            "AH01630: client denied by server configuration: {target}",
            target=log_item(target) if target else "uri " + log_item(request.path),
            request=request,
            log_tag="authz_core",
        )
        return 403

    def _decide(self, request, conf, user):
        """evaluate() over the scope's rules; a Deferred when a host rule
        needs a DNS lookup first."""
        facts = Facts(self, request, conf, user)
        try:
            return evaluate(self._implicit_any(conf.require), facts)
        except NeedHost as e:
            d = self._lookup_host(request, e.args[0])
            return d.addCallback(lambda _: self._decide(request, conf, user))
        except htpasswd.Unavailable as e:
            log.error("{problem}: answered 500", problem=str(e), request=request)
            return 500

    def _implicit_any(self, rules):
        """The scope's Require lines as the implicit <RequireAny>, built once
        per merged list (the list is kept with it, so its id is not reused)."""
        held = self._implicit.get(id(rules))
        if held is None or held[0] is not rules:
            if len(self._implicit) > 4096:  # old configs after many reloads
                self._implicit.clear()
            held = self._implicit[id(rules)] = (rules, Section("any", rules))
        return held[1]

    def _lookup_host(self, request, ip):
        def found(name):
            if len(self.hosts) > 10000:
                self.hosts.clear()
            self.hosts[ip] = (name, time.monotonic() + HOST_TTL)
            request.notes[HOST_NOTE] = name

        return self._blocking(request, self._dns, double_reverse, ip).addCallback(found)

    def _blocking(self, request, semaphore, fn, *args):
        """``fn(*args)`` in a thread of the reactor's pool (at most the
        semaphore's count at once); at once where the reactor has no
        threads (axkit.testing's fake clock)."""
        reactor = request.reactor
        if not IReactorThreads.providedBy(reactor):
            return defer.maybeDeferred(fn, *args)
        return semaphore.run(threads.deferToThreadPool, reactor, reactor.getThreadPool(), fn, *args)

    # -- authentication: Basic credentials ---------------------------------------

    def hook_authentication(self, request, conf):
        if request.notes.get(NOTE) != "auth":
            return DECLINED
        if conf.auth_type != "Basic":
            log.error(
                "AH00027: No authentication done but request not allowed without "
                "authentication for {path}. Authentication not configured? "
                "(add AuthType Basic, AuthName, AuthUserFile)",
                path=log_item(request.path),
                request=request,
            )
            return 500
        if not conf.auth_name or not conf.auth_user_file:
            log.error(
                "AuthType Basic for {path} needs {what}: answered 500",
                path=log_item(request.path),
                what="AuthName" if not conf.auth_name else "AuthUserFile",
                request=request,
            )
            return 500
        header = request.headers.get("authorization")
        if header is None:
            return self._challenge(request, conf)
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            log.error(
                "AH01614: client used wrong authentication scheme: {path}",
                path=log_item(request.path),
                request=request,
                log_tag="auth_basic",
            )
            return self._challenge(request, conf)
        token = token.strip(" \t")
        if not token:
            return self._challenge(request, conf)
        if len(token) > MAX_CREDENTIALS:
            return self._malformed(request, "Basic credentials too long")
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return self._malformed(request, "Basic credentials are not base64")
        user, colon, password = raw.partition(b":")
        if not colon:
            return self._malformed(request, "Basic credentials without a ':'")
        # Apache knows the user from here on: the access log names it even
        # when the password is wrong.
        request.user = user.decode("utf-8", "backslashreplace")
        try:
            users = htpasswd.password_file(conf.auth_user_file).get()
        except htpasswd.Unavailable as e:
            log.error(
                "AH01620: Could not open password file: {problem}",
                problem=str(e),
                request=request,
                log_tag="authn_file",
            )
            return 500
        hashed = users.get(user)
        if hashed is None:
            log.error(
                "AH01618: user {user} not found: {path}",
                user=log_item(user),
                path=log_item(request.path),
                request=request,
                log_tag="auth_basic",
            )
            return self._challenge(request, conf)
        path = conf.auth_user_file
        if self.verified.hit(path, user, hashed, password):
            return self._authenticated(request, user)
        if htpasswd.is_slow(hashed):
            result = self._blocking(request, self._slow, self._verify, hashed, password)
        else:
            result = self._verify(hashed, password)
        return _then(result, lambda ok: self._checked(request, conf, user, hashed, password, ok))

    @staticmethod
    def _verify(hashed, password):
        try:
            return htpasswd.verify(password, hashed)
        except htpasswd.Unsupported as e:
            return e

    def _checked(self, request, conf, user, hashed, password, ok):
        if isinstance(ok, htpasswd.Unsupported):
            log.error(
                "user {user} in {file}: {problem}",
                user=log_item(user),
                file=conf.auth_user_file,
                problem=str(ok),
                request=request,
            )
            ok = False
        if not ok:
            log.error(
                'AH01617: user {user}: authentication failure for "{path}": Password Mismatch',
                user=log_item(user),
                path=log_item(request.path),
                request=request,
                log_tag="auth_basic",
            )
            return self._challenge(request, conf)
        self.verified.add(conf.auth_user_file, user, hashed, password)
        return self._authenticated(request, user)

    def _authenticated(self, request, user):
        request.notes[USER_NOTE] = user
        request.auth_type = "Basic"
        return OK

    def _challenge(self, request, conf):
        realm = (conf.auth_name or "").replace("\\", "\\\\").replace('"', '\\"')
        request.response_headers.set("WWW-Authenticate", f'Basic realm="{realm}"')
        return 401

    def _malformed(self, request, why):
        log.info("400 to {client}: {why}", client=request.client_address, why=why, request=request)
        return 400

    # -- authorization: the rules, with the user --------------------------------

    def hook_authorization(self, request, conf):
        if request.notes.get(NOTE) != "auth":
            return DECLINED
        user = request.notes.get(USER_NOTE)
        if user is None:
            return self._challenge(request, conf)
        return _then(
            self._decide(request, conf, user),
            lambda result: self._with_user(request, conf, user, result),
        )

    def _with_user(self, request, conf, user, result):
        if result == GRANTED:
            return DECLINED
        if result.__class__ is int:
            return result
        log.error(
            'AH01631: user {user}: authorization failure for "{path}": ',
            user=log_item(user),
            path=log_item(request.path),
            request=request,
            log_tag="authz_core",
        )
        return self._challenge(request, conf)
