"""TLS listeners: `Listen ssl:...` with certificates per <Server> (SNI),
paths relative to the config file, and certificates re-read on SIGHUP.

An ``ssl:`` endpoint string is Twisted's (``ssl:443:privateKey=key.pem:
certKey=cert.pem``), but axkit builds the listener itself so that

- ``privateKey``, ``certKey``, ``extraCertChain`` and ``dhParameters`` are
  taken from the config file's folder when relative, like every other path;
- a ``<Server>`` with ``SSLCertificateFile`` / ``SSLCertificateKeyFile`` gets
  its own certificate, chosen by the name the client asks for (SNI) among
  its ``ServerName`` and ``ServerAlias`` names; the endpoint's own
  certificate (or, without one, the first such <Server>'s on that listener,
  as Apache's first virtual host) answers every other name;
- a reload (SIGHUP) reads the certificate files again: new connections get
  the renewed certificates, connections already open keep theirs.

The contexts are made by Twisted's ``CertificateOptions`` (its protocol
versions, ciphers and ALPN); only the choice among them is ours, through
OpenSSL's servername callback.
"""

import fnmatch

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from axkit.config.directives import SERVER_ONLY, Directive
from axkit.config.errors import ConfigError, ConfigErrors

# The endpoint options that name files.
PATH_OPTIONS = ("privateKey", "certKey", "extraCertChain", "dhParameters")
KNOWN_OPTIONS = PATH_OPTIONS + ("port", "interface", "backlog")


def is_tls(endpoint):
    return endpoint.split(":", 1)[0].lower() == "ssl"


# -- endpoint strings ----------------------------------------------------------


def split_endpoint(text):
    """``text`` cut at its unescaped colons, escapes removed (Twisted's
    endpoint syntax: ``\\:`` is a colon inside a value)."""
    parts, current, chars = [], [], iter(text)
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def join_endpoint(parts):
    return ":".join(p.replace("\\", "\\\\").replace(":", "\\:") for p in parts)


def parse_tls_endpoint(text):
    """``ssl:...`` -> {option: value} (the port under "port"); ConfigError
    for what axkit's TLS listener does not take."""
    parts = split_endpoint(text)[1:]
    options = {}
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0:
                key, value = "port", part
            else:
                raise ConfigError(f"bad listening endpoint {text!r}: {part!r} is not name=value")
        if key not in KNOWN_OPTIONS:
            raise ConfigError(
                f"bad listening endpoint {text!r}: axkit's TLS listener does not "
                f"take {key}= (it takes {', '.join(KNOWN_OPTIONS)})"
            )
        options[key] = value
    if "port" not in options or not options["port"].isdigit():
        raise ConfigError(f"bad listening endpoint {text!r}: no port number")
    if "backlog" in options and not options["backlog"].isdigit():
        raise ConfigError(f"bad listening endpoint {text!r}: backlog must be a number")
    if "certKey" in options and "privateKey" not in options:
        raise ConfigError(f"bad listening endpoint {text!r}: certKey= needs privateKey=")
    return options


def absolute_tls_paths(text, base_dir):
    """The ``ssl:`` endpoint ``text`` with relative file options made
    relative to ``base_dir`` (the config file's folder), checked."""
    import os

    parse_tls_endpoint(text)
    parts = split_endpoint(text)
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if eq and key in PATH_OPTIONS and value:
            parts[i] = (
                f"{key}={os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))}"
            )
    return join_endpoint(parts)


# -- directives ----------------------------------------------------------------


def _readable_file(word, ctx):
    from axkit.config.types import path

    full = path(word, ctx)
    try:
        _read(full)
    except OSError as e:
        raise ConfigError(f"cannot read {full}: {e.strerror}")
    return full


_readable_file.label = "PATH"  # type: ignore[attr-defined]

TLS_DIRECTIVES = [
    Directive(
        "SSLCertificateFile",
        _readable_file,
        scopes=SERVER_ONLY,
        doc="PEM certificate of this <Server> for its TLS (ssl:) listeners, chosen "
        "by SNI among its ServerName and ServerAlias names; intermediate "
        "certificates may follow it in the file. Relative to the config file.",
    ),
    Directive(
        "SSLCertificateKeyFile",
        _readable_file,
        scopes=SERVER_ONLY,
        doc="PEM private key for SSLCertificateFile (default: the key is in "
        "SSLCertificateFile itself). Relative to the config file.",
    ),
]


# -- contexts ------------------------------------------------------------------


def _read(path):
    # After twistd -u dropped root, a root-only key is read again through
    # the root-held opener (axkit/logopener.py), as it was read at start.
    from axkit.logopener import read_file

    return read_file(path)


def make_context(cert_file, key_file=None, chain_file=None, dh_file=None):
    """An OpenSSL context serving ``cert_file`` (a PEM leaf certificate,
    maybe followed by intermediates) with ``key_file`` (default: the key is
    in ``cert_file``).  ValueError says what is wrong."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL
    from twisted.internet.ssl import CertificateOptions, DiffieHellmanParameters
    from twisted.python.filepath import FilePath

    key_file = key_file or cert_file
    try:
        certs = x509.load_pem_x509_certificates(_read(cert_file))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the certificate in {cert_file}: {_reason(e)}")
    try:
        key = serialization.load_pem_private_key(_read(key_file), None)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"cannot read the private key in {key_file}: {_reason(e)}")
    chain = certs[1:]
    if chain_file:
        try:
            chain += x509.load_pem_x509_certificates(_read(chain_file))
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read the certificates in {chain_file}: {_reason(e)}")
    dh = DiffieHellmanParameters.fromFile(FilePath(dh_file)) if dh_file else None
    try:
        try:
            return CertificateOptions(
                privateKey=key, certificate=certs[0], extraCertChain=chain, dhParameters=dh
            ).getContext()
        except TypeError:
            # pyOpenSSL before 24.3 takes its own X509/PKey objects only.
            from OpenSSL.crypto import X509, PKey

            return CertificateOptions(
                privateKey=PKey.from_cryptography_key(key),
                certificate=X509.from_cryptography(certs[0]),
                extraCertChain=[X509.from_cryptography(c) for c in chain],
                dhParameters=dh,
            ).getContext()
    except SSL.Error as e:
        raise ValueError(f"certificate {cert_file} and key {key_file}: {_reason(e)}")


def _reason(e):
    args = getattr(e, "args", ())
    if args and isinstance(args[0], list) and args[0] and isinstance(args[0][0], tuple):
        return "; ".join(str(item[-1]) for item in args[0])  # OpenSSL's error queue
    return getattr(e, "strerror", None) or str(e)


# A certificate that ends within this is worth a warning at start and reload.
EXPIRY_WARNING = 14 * 86400


def _now():
    import time

    return time.time()


def not_valid_after(cert_file):
    """When the first certificate in ``cert_file`` ends (seconds since the
    epoch), or None if it cannot be read."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificates(_read(cert_file))[0]
    except (OSError, ValueError, IndexError):
        return None
    ends = getattr(cert, "not_valid_after_utc", None)  # cryptography 42
    if ends is None:
        import calendar

        return calendar.timegm(cert.not_valid_after.timetuple())
    return ends.timestamp()


def expiry_warnings(config, certificates):
    """ConfigWarnings for certificates that end within EXPIRY_WARNING."""
    import time

    from axkit.config.errors import ConfigWarning

    out = []
    for endpoint, found in certificates.items():
        file, line = _listen_source(config, endpoint, config.listeners.get(endpoint, []))
        for cert, ends in found.expiring:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ends))
            state = "expired on" if ends < _now() else "expires on"
            out.append(ConfigWarning(f"certificate {cert} {state} {when}", file, line))
    return out


def server_names(server):
    names = ([server.name] if server.name else []) + list(server.aliases)
    return [n.lower() for n in names]


class Certificates:
    """The contexts of one TLS listener: the default one and one per
    server name, built from the endpoint and the config's servers."""

    def __init__(self, endpoint, servers):
        options = parse_tls_endpoint(endpoint)
        built = {}  # (cert, key) -> context: a file shared by servers is read once
        self.files = set()  # every file read (for the opener: axkit/logopener.py)
        self.expiring = []  # (certificate file, not valid after) soon or past

        def context(cert, key, chain=None, dh=None):
            k = (cert, key or cert, chain, dh)
            self.files.update(f for f in k if f)
            if k not in built:
                built[k] = make_context(cert, key, chain, dh)
                ends = not_valid_after(cert)
                if ends is not None and ends < _now() + EXPIRY_WARNING:
                    self.expiring.append((cert, ends))
            return built[k]

        self.exact = {}
        self.wildcards = []
        default = None
        if "privateKey" in options:
            default = context(
                options.get("certKey") or options["privateKey"],
                options["privateKey"],
                options.get("extraCertChain"),
                options.get("dhParameters"),
            )
        for server in servers:
            conf = server.base.conf
            cert = conf.ssl_certificate_file
            if cert is None:
                continue
            ctx = context(cert, conf.ssl_certificate_key_file)
            if default is None:
                default = ctx
            for name in server_names(server):
                if "*" in name or "?" in name:
                    self.wildcards.append((name, ctx))
                else:
                    self.exact.setdefault(name, ctx)
        if default is None:
            raise ValueError(
                "no certificate: give the endpoint privateKey= (and certKey=), or "
                "SSLCertificateFile to a <Server> that listens on it"
            )
        self.default = default
        if self.exact or self.wildcards:
            default.set_tlsext_servername_callback(self._choose)

    def for_name(self, name):
        """The context for an SNI name (bytes or str), or None (the default)."""
        if not name:
            return None
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        name = name.lower().rstrip(".")
        ctx = self.exact.get(name)
        if ctx is None:
            for pattern, candidate in self.wildcards:
                if fnmatch.fnmatchcase(name, pattern):
                    return candidate
        return ctx

    def _choose(self, connection):
        # OpenSSL's servername callback, during the ClientHello: switch the
        # connection to the named server's context before the certificate
        # is sent.
        ctx = self.for_name(connection.get_servername())
        if ctx is not None and ctx is not self.default:
            connection.set_context(ctx)


@implementer(IOpenSSLServerConnectionCreator)
class SNIConnectionCreator:
    """What the TLS port asks for each new connection: an OpenSSL
    Connection on the current default context.  ``update`` swaps in new
    Certificates (a reload); open connections keep the contexts they hold."""

    def __init__(self, certificates):
        self.certificates = certificates

    def update(self, certificates):
        self.certificates = certificates

    def serverConnectionForTLS(self, tlsProtocol):
        from OpenSSL.SSL import Connection

        return Connection(self.certificates.default, None)


def listener_certificates(config, endpoint):
    """Certificates for TLS listener ``endpoint`` of ``config``;
    ConfigError (at its Listen line when it can be found) if they cannot
    be loaded."""
    servers = config.listeners.get(endpoint, [])
    try:
        return Certificates(endpoint, servers)
    except ValueError as e:
        file, line = _listen_source(config, endpoint, servers)
        raise ConfigError(f"Listen {endpoint}: {e}", file, line)


def _listen_source(config, endpoint, servers):
    for scope in [s.scope for s in servers] + [config.global_scope]:
        if "listen" in scope.sources and endpoint in scope.values.get("listen", ()):
            return scope.sources["listen"]
    return config.source, None


def check_certificates(config):
    """Load every TLS listener's certificates (``--check``, start, reload):
    ConfigErrors naming file:line when one cannot be used; else a dict
    endpoint -> Certificates."""
    found, errors = {}, []
    for endpoint in config.listeners:
        if is_tls(endpoint):
            try:
                found[endpoint] = listener_certificates(config, endpoint)
            except ConfigError as e:
                errors.append(e)
    if errors:
        raise ConfigErrors(errors)
    return found


class TLSListeners:
    """A service's TLS listeners: the connection creator of each, so that a
    reload can hand them the certificates it read."""

    def __init__(self):
        self.creators = {}  # endpoint -> SNIConnectionCreator

    def endpoint(self, reactor, endpoint, config, backlog=None):
        """The IStreamServerEndpoint to listen on for TLS ``endpoint``
        (with ``backlog`` unless the string names one)."""
        text = endpoint
        if backlog is not None and "backlog=" not in endpoint:
            text = f"{endpoint}:backlog={backlog}"
        server_endpoint, self.creators[endpoint] = tls_endpoint(reactor, text, config.tls[endpoint])
        return server_endpoint

    def wrap(self, endpoint, config, factory):
        """``factory`` behind TLS for an ``ssl:`` socket adopted as it is
        (--reload's re-executed process); other endpoints' unchanged."""
        if not is_tls(endpoint):
            return factory
        from twisted.protocols.tls import TLSMemoryBIOFactory

        creator = self.creators[endpoint] = SNIConnectionCreator(config.tls[endpoint])
        return TLSMemoryBIOFactory(creator, False, factory)

    def renew(self, config, log):
        """A reload read the certificate files again: new connections get
        them, open ones keep theirs; those ending soon are warned about."""
        for endpoint, creator in self.creators.items():
            if endpoint in config.tls:
                creator.update(config.tls[endpoint])
        for warning in expiry_warnings(config, config.tls):
            log.warn("{warning}", warning=str(warning))

    def forget(self, endpoint):
        self.creators.pop(endpoint, None)


def tls_endpoint(reactor, endpoint, certificates):
    """(an IStreamServerEndpoint, its SNIConnectionCreator) for ``endpoint``."""
    from twisted.internet.endpoints import SSL4ServerEndpoint

    options = parse_tls_endpoint(endpoint)
    creator = SNIConnectionCreator(certificates)
    backlog = int(options.get("backlog", 50))
    return (
        SSL4ServerEndpoint(
            reactor,
            int(options["port"]),
            creator,  # type: ignore[arg-type]
            backlog=backlog,
            interface=options.get("interface", ""),
        ),
        creator,
    )
