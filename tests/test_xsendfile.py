"""X-Sendfile from every kind of handler -- a CGI program, a WSGI app, an
ASGI app, a proxied backend -- through one real server on 127.0.0.1: the
file is sent by axkit (ranges, HEAD, validators), the handler's body and
the field never reach the client, and only files under XSendFilePath
(symlinks resolved) are sent."""

import os

from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server as web_server

from axkit.proxy import client

from .cgi_support import plugin_name, request, serve
from .test_wsgi_protocol import plugin_line
from .xsendfile_apps import CGI_PROGRAM, DECOY, Backend

CONTENT = b"0123456789abcdefghij"


class XSendFileCase:
    """The same checks for each handler (``prefix`` picks it)."""

    prefix = ""

    @defer.inlineCallbacks
    def setUp(self):
        top = os.path.realpath(os.path.abspath(self.mktemp()))
        self.files = os.path.join(top, "files")
        outside = os.path.join(top, "outside")
        cgi_bin = os.path.join(top, "cgi-bin")
        for folder in (self.files, outside, cgi_bin):
            os.makedirs(folder)
        self.report = os.path.join(self.files, "report.txt")
        with open(self.report, "wb") as f:
            f.write(CONTENT)
        self.secret = os.path.join(outside, "secret.txt")
        with open(self.secret, "wb") as f:
            f.write(b"secret")
        self.escape = os.path.join(self.files, "escape.txt")
        os.symlink(self.secret, self.escape)
        # The configured folder is reached through a symlink: resolved once.
        os.symlink(self.files, os.path.join(top, "via-link"))
        program = os.path.join(cgi_bin, "xsf.cgi")
        with open(program, "w") as f:
            f.write(CGI_PROGRAM)
        os.chmod(program, 0o755)
        site = web_server.Site(Backend())
        site.log = lambda request: None
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(client.close_all)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {top}
            Plugin proxy
            Plugin {plugin_name()}
            Plugin {plugin_line()}
            Plugin asgi
            Plugin uri_to_file
            ScriptAlias /cgi/ {cgi_bin}/
            WSGIScriptAlias /wsgi tests.xsendfile_apps:wsgi_app
            ASGIAlias /asgi tests.xsendfile_apps:asgi_app
            ProxyPass /proxy/ http://127.0.0.1:{port.getHost().port}/
            XSendFile On
            XSendFilePath {top}/via-link
            """,
        )

    def ask(self, target, method="GET", headers=()):
        return request(self.server.port, method, f"{self.prefix}?{target}", headers)

    def logged(self, text):
        return [e for e in self.events if text in (formatEvent(e) or "")]

    def assertNoLeak(self, response):
        names = {n.lower() for n, _ in response.headers}
        self.assertNotIn("x-sendfile", names)
        self.assertNotIn(b"never sent", response.body)

    @defer.inlineCallbacks
    def test_the_file_is_sent_with_the_handler_s_type(self):
        response = yield self.ask(self.report)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, CONTENT)
        fields = {n.lower(): v for n, v in response.headers}
        self.assertEqual(fields["content-type"], "text/x-report")
        self.assertEqual(fields["content-length"], str(len(CONTENT)))
        self.assertNotIn("own", fields["etag"])  # the file's validator
        self.assertIn("last-modified", fields)
        self.assertNoLeak(response)

    @defer.inlineCallbacks
    def test_a_range(self):
        response = yield self.ask(self.report, headers=[("Range", "bytes=2-5")])
        self.assertEqual(response.status, 206)
        self.assertEqual(response.body, b"2345")
        fields = {n.lower(): v for n, v in response.headers}
        self.assertEqual(fields["content-range"], f"bytes 2-5/{len(CONTENT)}")
        self.assertNoLeak(response)

    @defer.inlineCallbacks
    def test_head(self):
        response = yield self.ask(self.report, method="HEAD")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"")
        fields = {n.lower(): v for n, v in response.headers}
        self.assertEqual(fields["content-length"], str(len(CONTENT)))
        self.assertNoLeak(response)

    @defer.inlineCallbacks
    def test_validators_give_304(self):
        first = yield self.ask(self.report)
        etag = dict((n.lower(), v) for n, v in first.headers)["etag"]
        response = yield self.ask(self.report, headers=[("If-None-Match", etag)])
        self.assertEqual(response.status, 304)
        self.assertNoLeak(response)

    @defer.inlineCallbacks
    def test_outside_the_path_is_404_and_one_log_line(self):
        response = yield self.ask(self.secret)
        self.assertEqual(response.status, 404)
        self.assertNoLeak(response)
        self.assertNotIn(b"secret", response.body)
        self.assertEqual(len(self.logged(f"X-Sendfile {self.secret} is not a file")), 1)

    @defer.inlineCallbacks
    def test_a_symlink_out_of_the_path_is_404(self):
        response = yield self.ask(self.escape)
        self.assertEqual(response.status, 404)
        self.assertNotIn(b"secret", response.body)
        self.assertNoLeak(response)
        self.assertEqual(len(self.logged(f"X-Sendfile {self.escape} is not a file")), 1)

    @defer.inlineCallbacks
    def test_dot_dot_and_relative_are_404(self):
        for target in (self.files + "/../outside/secret.txt", "report.txt"):
            response = yield self.ask(target)
            self.assertEqual(response.status, 404, target)
            self.assertNoLeak(response)


class CGITests(XSendFileCase, TestCase):
    prefix = "/cgi/xsf.cgi"


class WSGITests(XSendFileCase, TestCase):
    prefix = "/wsgi"


class ASGITests(XSendFileCase, TestCase):
    prefix = "/asgi"


class ProxyTests(XSendFileCase, TestCase):
    prefix = "/proxy/x"


assert DECOY  # (the handlers' body, which the checks above look for)


class ConfigTimeTests(SynchronousTestCase):
    def test_folders_are_resolved_when_read_and_one_checker_per_value(self):
        from axkit.proxy import xsendfile
        from axkit.testing import load_config

        top = os.path.realpath(os.path.abspath(self.mktemp()))
        os.makedirs(os.path.join(top, "real"))
        os.symlink(os.path.join(top, "real"), os.path.join(top, "link"))
        config = load_config(f"Plugin proxy\nXSendFile On\nXSendFilePath {top}/link {top}/real\n")
        value = config.global_resolved.conf.x_send_file_path
        self.assertEqual(value, ((f"{top}/real", f"{top}/real"),))
        checker = xsendfile.checker(value)
        self.assertIs(xsendfile.checker(value), checker)
        self.assertEqual(checker.roots, (f"{top}/real/",))
