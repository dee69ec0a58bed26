"""One keep-alive Twisted Agent per backend.

Each backend gets its own HTTPConnectionPool (``max=`` idle connections
kept, ProxyPass's key) and an Agent whose endpoint factory ignores the
URL it is handed and always dials that backend: nothing in a client's
request (an absolute-form target, a ``//host`` path, a Host field) can
choose where the proxy connects.  The Agent's pool retries an idempotent
request without a body once on a kept connection the backend had closed;
a request with a body (a POST) is never sent twice.
"""

from twisted.internet.defer import DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

CONNECT_TIMEOUT = 10
DEFAULT_MAX = 16

_agents = {}  # (reactor, backend key, max) -> Agent


class _QuietFactory(_HTTP11ClientFactory):
    """Twisted's, without a "Starting factory" log line per backend connection."""

    noisy = False


@implementer(IAgentEndpointFactory)
class _FixedEndpoint:
    """Always the backend's own endpoint, whatever the URL says."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def endpointForURI(self, uri):
        return self.endpoint


def agent_for(reactor, backend, max_idle=None):
    """The Agent (with its pool) for ``backend`` on ``reactor``."""
    max_idle = max_idle or DEFAULT_MAX
    key = (reactor, backend.key, max_idle)
    agent = _agents.get(key)
    if agent is None:
        if backend.socket is not None:
            endpoint = UNIXClientEndpoint(reactor, backend.socket, timeout=CONNECT_TIMEOUT)
        else:
            endpoint = TCP4ClientEndpoint(
                reactor, backend.host, backend.port, timeout=CONNECT_TIMEOUT
            )
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = max_idle
        pool.retryAutomatically = True
        pool._factory = _QuietFactory
        agent = Agent.usingEndpointFactory(reactor, _FixedEndpoint(endpoint), pool=pool)
        agent.axkit_pool = pool
        _agents[key] = agent
    return agent


def close_all():
    """Close every kept backend connection (server stop, tests' cleanup)."""
    agents = list(_agents.values())
    _agents.clear()
    return DeferredList([a.axkit_pool.closeCachedConnections() for a in agents])
