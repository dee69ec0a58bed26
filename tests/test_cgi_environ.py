"""The environment a CGI program sees, variable by variable (RFC 3875 §4.1),
over a real socket with the real server."""

import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from axkit import SERVER_SOFTWARE

from .cgi_support import CGI_BIN, base_config, request, serve


class EnvironmentTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        os.environ["AXKIT_CGI_SECRET"] = "server-only"
        os.environ["AXKIT_CGI_PASSED"] = "passed-through"
        self.addCleanup(os.environ.pop, "AXKIT_CGI_SECRET", None)
        self.addCleanup(os.environ.pop, "AXKIT_CGI_PASSED", None)
        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        self.server = yield serve(
            self,
            base_config(
                self.docroot,
                """
            PassEnv AXKIT_CGI_PASSED AXKIT_CGI_MISSING
            SetEnv SITE_MODE testing
            SetEnv HTTP_X_SET fromconf
            SetEnv TO_REMOVE x
            UnsetEnv TO_REMOVE HTTP_X_DROPPED
        """,
            ),
        )

    @defer.inlineCallbacks
    def dump(self, path, method="GET", headers=(), body=b""):
        response = yield request(self.server.port, method, path, headers, body)
        self.assertEqual(response.status, 200, response.body[:500])
        return json.loads(response.body)

    @defer.inlineCallbacks
    def test_rfc3875_variables_for_a_get(self):
        seen = yield self.dump(
            "/cgi-bin/env.py/extra/path%20x?a=%20b&c=d%26e",
            headers=[("User-Agent", "test-agent/1"), ("X-Multi", "one"), ("X-Multi", "two")],
        )
        env = seen["env"]
        self.assertEqual(env["GATEWAY_INTERFACE"], "CGI/1.1")
        self.assertEqual(env["SERVER_SOFTWARE"], SERVER_SOFTWARE)
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        # The query string stays percent-encoded, exactly as sent.
        self.assertEqual(env["QUERY_STRING"], "a=%20b&c=d%26e")
        self.assertEqual(env["REQUEST_URI"], "/cgi-bin/env.py/extra/path%20x?a=%20b&c=d%26e")
        self.assertEqual(env["SCRIPT_NAME"], "/cgi-bin/env.py")
        # PATH_INFO is decoded (§4.1.5); PATH_TRANSLATED maps it under the root.
        self.assertEqual(env["PATH_INFO"], "/extra/path x")
        self.assertEqual(env["PATH_TRANSLATED"], os.path.abspath(self.docroot) + "/extra/path x")
        self.assertEqual(env["SCRIPT_FILENAME"], os.path.join(CGI_BIN, "env.py"))
        self.assertEqual(env["DOCUMENT_ROOT"], os.path.abspath(self.docroot))
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["REMOTE_HOST"], "127.0.0.1")
        self.assertTrue(env["REMOTE_PORT"].isdigit())
        self.assertNotEqual(env["REMOTE_PORT"], str(self.server.port))
        self.assertEqual(env["SERVER_ADDR"], "127.0.0.1")
        self.assertEqual(env["SERVER_PORT"], str(self.server.port))
        self.assertEqual(env["SERVER_NAME"], "localhost")
        self.assertEqual(env["REQUEST_SCHEME"], "http")
        self.assertEqual(env["HTTP_USER_AGENT"], "test-agent/1")
        self.assertEqual(env["HTTP_HOST"], "localhost")
        self.assertEqual(env["HTTP_X_MULTI"], "one, two")
        self.assertEqual(env["PATH"], "/usr/local/bin:/usr/bin:/bin")
        # Absent, not empty, when there is no value (§4.1).
        for name in ("CONTENT_LENGTH", "CONTENT_TYPE", "AUTH_TYPE", "REMOTE_USER", "HTTPS"):
            self.assertNotIn(name, env)
        # The working directory is the script's own.
        self.assertEqual(seen["cwd"], CGI_BIN)
        self.assertEqual(seen["argv"], [])

    @defer.inlineCallbacks
    def test_no_query_means_empty_query_string_and_no_path_info(self):
        env = (yield self.dump("/cgi-bin/env.py"))["env"]
        self.assertEqual(env["QUERY_STRING"], "")
        self.assertNotIn("PATH_INFO", env)
        self.assertNotIn("PATH_TRANSLATED", env)

    @defer.inlineCallbacks
    def test_clean_environment_with_passenv_setenv_unsetenv(self):
        env = (yield self.dump("/cgi-bin/env.py", headers=[("X-Dropped", "1")]))["env"]
        self.assertNotIn("AXKIT_CGI_SECRET", env)
        self.assertNotIn("HOME", env)
        self.assertEqual(env["AXKIT_CGI_PASSED"], "passed-through")
        self.assertNotIn("AXKIT_CGI_MISSING", env)
        self.assertEqual(env["SITE_MODE"], "testing")
        self.assertNotIn("TO_REMOVE", env)
        self.assertNotIn("HTTP_X_DROPPED", env)

    @defer.inlineCallbacks
    def test_httpoxy_authorization_and_underscored_headers_are_not_passed(self):
        env = (
            yield self.dump(
                "/cgi-bin/env.py",
                headers=[
                    ("Proxy", "http://evil.example:8080/"),
                    ("Authorization", "Basic dXNlcjpwYXNz"),
                    ("Proxy-Authorization", "Basic cHJveHk6cGFzcw=="),
                    ("X_Forwarded_For", "6.6.6.6"),
                    ("X-Forwarded-For", "10.0.0.1"),
                ],
            )
        )["env"]
        self.assertNotIn("HTTP_PROXY", env)
        self.assertNotIn("HTTP_AUTHORIZATION", env)
        self.assertNotIn("HTTP_PROXY_AUTHORIZATION", env)
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "10.0.0.1")

    @defer.inlineCallbacks
    def test_a_request_field_replaces_a_setenv_of_its_name(self):
        # Not joined with it as if the field were repeated (Apache: the field).
        env = (yield self.dump("/cgi-bin/env.py"))["env"]
        self.assertEqual(env["HTTP_X_SET"], "fromconf")
        env = (yield self.dump("/cgi-bin/env.py", headers=[("X-Set", "one"), ("X-Set", "two")]))[
            "env"
        ]
        self.assertEqual(env["HTTP_X_SET"], "one, two")

    @defer.inlineCallbacks
    def test_post_sets_content_length_and_type(self):
        seen = yield self.dump(
            "/cgi-bin/env.py",
            "POST",
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
            body=b"a=1&b=2",
        )
        env = seen["env"]
        self.assertEqual(env["REQUEST_METHOD"], "POST")
        self.assertEqual(env["CONTENT_LENGTH"], "7")
        self.assertEqual(env["CONTENT_TYPE"], "application/x-www-form-urlencoded")
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertEqual(seen["body"], "a=1&b=2")

    @defer.inlineCallbacks
    def test_indexed_query_becomes_arguments(self):
        # §4.4: a query without '=' is also given as command-line words.
        seen = yield self.dump("/cgi-bin/env.py?hello+big%20world")
        self.assertEqual(seen["argv"], ["hello", "big world"])
        self.assertEqual(seen["env"]["QUERY_STRING"], "hello+big%20world")

    @defer.inlineCallbacks
    def test_header_bytes_reach_the_program_unchanged(self):
        # A raw 0xE9 in a header value is one byte 0xE9 in the environment
        # (not its UTF-8 re-encoding); the dump shows it surrogate-escaped.
        raw = (
            b"GET /cgi-bin/env.py HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: close\r\nX-Latin: caf\xe9\r\n"
            b"X-Twice: a\r\nX-Twice: \xff\r\n\r\n"
        )
        from axkit.testing import parse_responses

        from .rawclient import exchange

        data = yield exchange(self.server.port, raw)
        env = json.loads(parse_responses(data, ["GET"])[0].body)["env"]
        self.assertEqual(env["HTTP_X_LATIN"].encode("utf-8", "surrogateescape"), b"caf\xe9")
        self.assertEqual(env["HTTP_X_TWICE"].encode("utf-8", "surrogateescape"), b"a, \xff")

    @defer.inlineCallbacks
    def test_cookies_are_joined_with_semicolons(self):
        env = (yield self.dump("/cgi-bin/env.py", headers=[("Cookie", "a=1"), ("Cookie", "b=2")]))[
            "env"
        ]
        self.assertEqual(env["HTTP_COOKIE"], "a=1; b=2")


class PassAuthTests(TestCase):
    @defer.inlineCallbacks
    def test_cgipassauth_on_passes_authorization(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(self, base_config(docroot, "CGIPassAuth On"))
        response = yield request(
            server.port,
            "GET",
            "/cgi-bin/env.py",
            [
                ("Authorization", "Basic dXNlcjpwYXNz"),
                ("Proxy-Authorization", "Basic cHJveHk6cGFzcw=="),
            ],
        )
        env = json.loads(response.body)["env"]
        self.assertEqual(env["HTTP_AUTHORIZATION"], "Basic dXNlcjpwYXNz")
        self.assertEqual(env["HTTP_PROXY_AUTHORIZATION"], "Basic cHJveHk6cGFzcw==")
