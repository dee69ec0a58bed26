"""MaxConnections against the open-file limit (axkit.listening.raise_fd_limit):
what plugins say they hold open is kept free of connections."""

import resource

from twisted.trial.unittest import SynchronousTestCase

from axkit.http.factory import ConnectionGate
from axkit.listening import raise_fd_limit
from axkit.testing import load_config


class FdLimitTests(SynchronousTestCase):
    def capped(self, text, soft=2000, hard=2000):
        self.patch(resource, "getrlimit", lambda which: (soft, hard))
        self.patch(resource, "setrlimit", lambda which, limits: None)
        gate = ConnectionGate(10000)
        raise_fd_limit(gate, load_config(text))
        return gate.maximum

    def test_server_reserve_only(self):
        self.assertEqual(self.capped("Plugin serve_file\n"), 2000 - 64)

    def test_cgi_programs_reserve_their_pipes(self):
        # CGIMaxProcesses 100: four descriptors each, beside the server's 64.
        self.assertEqual(self.capped("Plugin cgi\nCGIMaxProcesses 100\n"), 2000 - 64 - 4 * 100)

    def test_under_the_limit_untouched(self):
        self.assertEqual(self.capped("Plugin cgi\n", soft=100000, hard=100000), 10000)
