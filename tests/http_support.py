"""Shared helpers of the HTTP engine tests: an echo site (raw socket
exchanges are in tests/rawclient.py)."""

from axkit.testing import MemorySite

ECHO_CONFIG = """
    Listen tcp:0:interface=127.0.0.1
    Plugin tests.httpplugins.Status
    Plugin tests.httpplugins.Inject
    Plugin tests.httpplugins.Echo
"""


def memory_site(test, extra="", plugins=None):
    site = MemorySite(ECHO_CONFIG + (plugins or "") + extra, route_logs=False)
    test.addCleanup(site.close)
    return site
