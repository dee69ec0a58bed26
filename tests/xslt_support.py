"""Helpers for the xslt tests: a copy of tests/xslt/site in a temp folder
(tests edit stylesheets there) served by a MemorySite."""

import os
import shutil
import tempfile
import threading
import time

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import TEST_LISTEN, MemorySite

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "xslt")

PLUGINS = """
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin xslt
Plugin serve_file
"""


def copy_site(test, chain_conf=""):
    """A copy of tests/xslt/site in a temp folder removed after ``test``."""
    root = os.path.join(tempfile.mkdtemp(prefix="axkit-xslt-"), "site")
    test.addCleanup(shutil.rmtree, os.path.dirname(root), True)
    shutil.copytree(os.path.join(FIXTURES, "site"), root)
    with open(os.path.join(root, "chain.conf"), "w") as f:
        f.write(chain_conf)
    return root


class XsltCase(SynchronousTestCase):
    config = ""  # {root} is the site's folder
    chain_conf = ""  # written to {root}/chain.conf

    def setUp(self):
        self.root = copy_site(self, self.chain_conf)
        self.site = self.make_site(self.config)

    def make_site(self, config):
        text = (
            f'Listen {TEST_LISTEN}\nDocumentRoot "{self.root}"\n'
            + PLUGINS.format(repo=REPO)
            + config.replace("{root}", self.root)
        )
        site = MemorySite(text, base_dir=self.root)
        self.addCleanup(site.close)
        return site

    def write(self, name, text):
        """Rewrite a file of the site, its mtime moved on (an edit)."""
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        later = time.time() + 5
        os.utime(path, (later, later))
        return path

    def read(self, name):
        with open(os.path.join(self.root, name)) as f:
            return f.read()

    def get(self, path, headers=(), method="GET"):
        r = self.site.request(method, path, headers)
        self.assertIsNotNone(r)
        return r

    def errors(self, site=None):
        """The error and critical log lines of ``site`` (self.site)."""
        site = site or self.site
        return site.messages(level=LogLevel.error) + site.messages(level=LogLevel.critical)


def expected(name):
    """A golden output (made by xsltproc from the same files; committed)."""
    with open(os.path.join(FIXTURES, "expected", name), "rb") as f:
        return f.read()


class HandOver:
    """A test plugin that builds XML itself and hands it to the pipeline.

    /built/keyed hands over a function building the page from ``version``
    and the file ``source`` (when set), with the key ``("keyed", version)``;
    ``built`` counts the builds, ``built_on`` is the last one's thread."""

    name = "handover"
    version = 1
    source = None
    built = 0
    built_on = None

    def hook_xmlresponse(self, request, conf):
        from lxml import etree

        from axkit.xslt import hand_over

        if request.path == "/built/bytes":
            hand_over(request, b"<page><title>Built</title><para>from bytes</para></page>")
        elif request.path == "/built/tree":
            page = etree.Element("page")
            etree.SubElement(page, "title").text = "Tree"
            hand_over(request, page.getroottree())
        elif request.path == "/built/keyed":
            cls = HandOver
            version, source = cls.version, cls.source

            def build():
                cls.built += 1
                cls.built_on = threading.current_thread()
                extra = ""
                if source is not None:
                    with open(source) as f:
                        extra = f.read()
                return f"<page><title>v{version}</title><para>{extra}</para></page>".encode()

            hand_over(request, build, key=("keyed", version), files=[source] if source else ())
        return None
