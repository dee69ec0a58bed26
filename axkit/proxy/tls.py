"""TLS to https:// backends: verified by default.

``SSLProxyVerify require`` (axkit's default; Apache's is ``none``) checks
the backend's certificate and name against the system's CAs, or against
``SSLProxyCACertificateFile`` (a PEM bundle) when it is given;
``SSLProxyVerify none`` encrypts without checking (a backend with a
self-signed certificate on a trusted network).  The server name is sent
(SNI) either way.
"""

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from axkit.config import ConfigError

_BEGIN = "-----BEGIN CERTIFICATE-----"


def load_bundle(path):
    """The certificates of a PEM file, as a Twisted trust root."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    blocks = [_BEGIN + b for b in text.split(_BEGIN)[1:]]
    if not blocks:
        raise ConfigError(f"{path}: no PEM certificate in it")
    try:
        certs = [ssl.Certificate.loadPEM(b.encode("ascii")) for b in blocks]
    except Exception as e:
        raise ConfigError(f"{path}: not a PEM certificate: {e}") from None
    return ssl.trustRootFromCertificates(certs)


def ca_file(word, ctx):
    """SSLProxyCACertificateFile's argument: a PEM file that loads (checked
    at its line)."""
    from axkit.config import path

    name = path(word, ctx)
    load_bundle(name)
    return name


ca_file.label = "FILE"


class TLSSettings:
    """How to speak TLS to https:// backends (one per server config)."""

    __slots__ = ("verify", "ca_file", "key", "_trust")

    def __init__(self, verify=True, ca_file=None):
        self.verify = verify
        self.ca_file = ca_file
        self.key = (verify, ca_file)
        self._trust = load_bundle(ca_file) if verify and ca_file else None

    def creator(self, hostname):
        """An IOpenSSLClientConnectionCreator for ``hostname``."""
        if self.verify:
            return ssl.optionsForClientTLS(hostname, trustRoot=self._trust)
        return _Unverified(hostname)


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    """TLS without a certificate check (SSLProxyVerify none), with SNI."""

    def __init__(self, hostname):
        self.context = ssl.CertificateOptions().getContext()
        self.name = hostname.encode("idna")

    def clientConnectionForTLS(self, tlsProtocol):
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(self.name)
        connection.set_connect_state()
        return connection
