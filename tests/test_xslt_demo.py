"""The demo site's styled XML page, end to end: the repository's own
site.conf (Plugin xslt, AxAddProcessor in <Files *.xml>, a print style)
through a real `twistd axkit`, the bodies equal to xsltproc's."""

import gzip
import os
import shutil
import tempfile
import urllib.request

from twisted.trial.unittest import TestCase

from axkit.testing import TwistdProcess

from .xslt_support import REPO, expected


def demo_site(test):
    """site.conf as the repository has it, listening on an ephemeral port
    (a folder whose site/, conf.d/ and axkit/ are the repository's)."""
    folder = tempfile.mkdtemp(prefix="axkit-demo-")
    test.addCleanup(shutil.rmtree, folder, True)
    for name in ("site", "conf.d", "axkit"):
        os.symlink(os.path.join(REPO, name), os.path.join(folder, name))
    with open(os.path.join(REPO, "site.conf")) as f:
        text = f.read()
    listen = "Listen tcp:8080:interface=127.0.0.1"
    test.assertIn(listen, text)
    conf = os.path.join(folder, "site.conf")
    with open(conf, "w") as f:
        f.write(text.replace(listen, "Listen tcp:0:interface=127.0.0.1"))
    proc = TwistdProcess(conf)
    test.addCleanup(proc.stop)
    return f"http://127.0.0.1:{proc.port}"


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, r.headers, r.read()


class DemoSite(TestCase):
    def test_styled_page(self):
        base = demo_site(self)
        status, headers, body = get(base + "/news.xml")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=UTF-8")
        self.assertEqual(body, expected("demo-news.html"))
        status, headers, body = get(base + "/news.xml?style=print")
        self.assertEqual(body, expected("demo-news-print.html"))
        # conf.d/static.conf's Gzip On applies to the transformed page.
        status, headers, body = get(base + "/news.xml", {"Accept-Encoding": "gzip"})
        self.assertEqual(headers["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(body), expected("demo-news.html"))
        # The home page links to it; the stylesheets are not under the root.
        self.assertIn(b'href="/news.xml"', get(base + "/")[2])
