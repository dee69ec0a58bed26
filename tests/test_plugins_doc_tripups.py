"""docs/plugins.md, for a new plugin author: how to get axkit (it is on no
package index), the testing helpers' reference, and what happens to
headers set in fixup when the answer is an error page -- each claim
checked against the code."""

import os
import re
from importlib import metadata

from twisted.trial.unittest import SynchronousTestCase

from axkit import testing
from axkit.hooks import DECLINED
from axkit.testing import MemorySite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def doc():
    with open(os.path.join(ROOT, "docs", "plugins.md"), encoding="utf-8") as f:
        return f.read()


class SetsAHeader:
    name = "sets_a_header"

    def hook_fixup(self, request, conf):
        request.response_headers.set("X-From-Fixup", "yes")
        return DECLINED


class InstallTests(SynchronousTestCase):
    def test_no_bare_pip_install_axkit(self):
        text = doc()
        self.assertNotIn("(`pip install axkit`, or", text)
        self.assertIn("`pip install /path/to/axkit`", text)
        self.assertIn("pip wheel --no-deps -w dist /path/to/axkit", text)

    def test_the_dependency_is_satisfied_by_an_installed_axkit(self):
        # What the page says: `dependencies = ["axkit"]` is met by the axkit
        # installed from a checkout (this test run's own), no index asked.
        self.assertIn('dependencies = ["axkit"]', doc())
        try:
            version = metadata.version("axkit")
        except metadata.PackageNotFoundError:
            self.skipTest("axkit is run from PYTHONPATH here, not installed")
        self.assertEqual(metadata.metadata("axkit")["Name"], "axkit")
        self.assertTrue(version)


class ReferenceTests(SynchronousTestCase):
    def test_every_helper_named_exists(self):
        text = doc().split("### The testing helpers", 1)[1].split("\n## ", 1)[0]
        site = MemorySite("")
        self.addCleanup(site.close)
        for member in re.findall(r"`site\.(\w+)", text):
            self.assertTrue(hasattr(site, member), member)
        connection = site.connect()
        for member in ("request", "send", "responses", "closed", "half_close", "lose"):
            self.assertIn(f"`{member}", text)
            self.assertTrue(hasattr(connection, member), member)
        response = site.get("/")
        for member in ("status", "reason", "headers", "body", "raw_head", "header"):
            self.assertIn(f"`{member}", text)
            self.assertTrue(hasattr(response, member), member)
        for helper in ("start_server", "http_pool", "TwistdProcess", "free_port", "load_config"):
            self.assertIn(f"`{helper}(", text)
            self.assertTrue(hasattr(testing, helper), helper)


class FixupHeadersTests(SynchronousTestCase):
    def test_not_on_an_error_page(self):
        self.assertIn("Response headers a plugin sets in `fixup`", doc())
        site = MemorySite("""
            Plugin tests.test_plugins_doc_tripups.SetsAHeader
            Plugin headers
            Header always set X-Always yes
        """)
        self.addCleanup(site.close)
        r = site.get("/nothing-answers-this")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("X-From-Fixup"))
        self.assertEqual(r.header("X-Always"), "yes")
