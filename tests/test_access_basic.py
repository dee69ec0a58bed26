"""Basic authentication: htpasswd files, groups, malformed credentials,
the cache, re-reading, the fail2ban-readable log line; then the whole
thing over a real socket (bcrypt in threads, Require host, the access log's
%u, a CGI program's REMOTE_USER)."""

import base64
import json
import os
import re
import shutil
import tempfile

from twisted.internet import defer, threads
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from axkit.auth import htpasswd
from axkit.log import format_log_line
from axkit.testing import MemorySite
from tests.cgi_support import CGI_BIN, LogCapture, plugin_name, request, serve

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "access_fixtures")
DOCROOT = os.path.join(HERE, "alias_fixtures", "docroot")

PROTECTED = f"""
    AuthType Basic
    AuthName "Private Area"
    AuthUserFile {FIXTURES}/users.htpasswd
    AuthGroupFile {FIXTURES}/groups
"""


def basic(user, password):
    if isinstance(user, str):
        user = user.encode("utf-8")
    if isinstance(password, str):
        password = password.encode("utf-8")
    return ("Authorization", "Basic " + base64.b64encode(user + b":" + password).decode())


def site_for(test, body):
    site = MemorySite(f"""
        Plugin access
        Plugin uri_to_file
        Plugin serve_file
        DocumentRoot {DOCROOT}
        {body}
    """)
    test.addCleanup(site.close)
    return site


# fail2ban 1.0's filter.d/apache-auth.conf with apache-common.conf (logging =
# logfile), as fail2ban-regex expands it; fail2ban cuts the date out of the
# line first, leaving "[]".
F2B_PREFREGEX = re.compile(
    r"^\[\]\s\[(:?error|(?!evasive)\S+:\S+)\]( \[pid \d+(:\S+ \d+)?\])? \[client "
    r"(?:\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]"
    r"{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)))\]?|(?P<dns>[\w\-.^_]*\w))"
    r"(:\d{1,5})?\] (?:AH\d+: )?(?P<content>.+)$"
)
F2B_FAILREGEX = [
    re.compile(r)
    for r in (
        r"^client (?:denied by server configuration|used wrong authentication scheme)\b",
        r"^user (?!`)(?P<user>(?:\S*|.*?)) (?:auth(?:oriz|entic)ation failure|not found|"
        r"denied by provider)\b",
    )
]


def fail2ban_host(line):
    """The client fail2ban's apache-auth filter finds in ``line``, or None."""
    line = re.sub(r"^\[[^]]*\]", "[]", line.rstrip("\n"))
    m = F2B_PREFREGEX.match(line)
    if m is None:
        return None
    if not any(r.search(m.group("content")) for r in F2B_FAILREGEX):
        return None
    return m.group("ip4") or m.group("ip6") or m.group("dns")


class BasicTests(SynchronousTestCase):
    def setUp(self):
        self.site = site_for(
            self,
            f"""
            <Location /private>
                {PROTECTED}
                Require valid-user
            </Location>
            <Location /admins>
                {PROTECTED}
                Require group admins
            </Location>
            <Location /carol>
                {PROTECTED}
                Require user carol "émile"
            </Location>
            <Location /mixed>
                {PROTECTED}
                Require ip 10.0.0.0/8
                Require valid-user
            </Location>
            <Location /both>
                {PROTECTED}
                <RequireAll>
                    Require valid-user
                    Require ip 10.0.0.0/8
                </RequireAll>
            </Location>
        """,
        )

    def lines(self):
        return [format_log_line(e) for e in self.site.events if e.get("log_tag")]

    def test_no_credentials_is_a_challenge(self):
        r = self.site.get("/private/")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Private Area"')
        self.assertEqual(self.lines(), [])  # as Apache: nothing to log yet

    def test_each_hash_kind(self):
        for user, password in [
            ("alice", "alicepw"),
            ("bob", "bobpw"),
            ("carol", "carolpw"),
            ("dave", "davepw"),
            ("émile", "pässwörd"),
        ]:
            r = self.site.get("/private/", [basic(user, password)])
            self.assertEqual(r.status, 404, user)  # let in; the folder is empty
            r = self.site.get("/private/", [basic(user, password + "x")])
            self.assertEqual(r.status, 401, user)

    def test_wrong_password_and_unknown_user_are_logged_for_fail2ban(self):
        self.assertEqual(self.site.get("/private/x", [basic("alice", "nope")]).status, 401)
        self.assertEqual(self.site.get("/private/x", [basic("zed", "nope")]).status, 401)
        lines = self.lines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(
            lines[0],
            r"^\[[-0-9 :]+\] \[auth_basic:error\] \[client "
            r"127\.0\.0\.1:40000\] AH01617: user alice: "
            r'authentication failure for "/private/x": '
            r"Password Mismatch\n$",
        )
        self.assertRegex(
            lines[1],
            r"\[auth_basic:error\] \[client 127\.0\.0\.1:40000\] "
            r"AH01618: user zed not found: /private/x\n$",
        )
        for line in lines:
            self.assertEqual(fail2ban_host(line), "127.0.0.1", line)

    def test_fail2ban_regex_matches_apache_s_own_line(self):
        # The line Apache 2.4.71 wrote for the same attempt (the reference),
        # and one that must not match: the filter is not a catch-all.
        apache = (
            "[Mon Dec 07 22:18:02.101398 2026] [auth_basic:error] [pid 24855:tid "
            "24862] [client 127.0.0.1:52080] AH01617: user alice: authentication "
            'failure for "/private/": Password Mismatch'
        )
        self.assertEqual(fail2ban_host(apache), "127.0.0.1")
        self.assertIsNone(
            fail2ban_host(
                "[2026-12-07 22:18:02] [error] [plugin access] "
                "[client 127.0.0.1] AH01617: user alice: "
                'authentication failure for "/": Password Mismatch'
            )
        )

    def test_a_user_name_cannot_forge_a_log_line(self):
        user = b"x\n[2026-12-07 00:00:00] [auth_basic:error] [client 6.6.6.6:1] user y"
        self.assertEqual(self.site.get("/private/", [basic(user, "p")]).status, 401)
        [line] = self.lines()
        self.assertNotIn("\n", line.rstrip("\n"))
        self.assertEqual(fail2ban_host(line), "127.0.0.1")

    def test_groups_and_users(self):
        self.assertEqual(self.site.get("/admins/", [basic("bob", "bobpw")]).status, 404)
        r = self.site.get("/admins/", [basic("carol", "carolpw")])
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Private Area"')
        self.assertIn(
            'AH01631: user carol: authorization failure for "/admins/": ',
            self.site.messages(plugin="access"),
        )
        self.assertEqual(fail2ban_host(self.lines()[-1]), "127.0.0.1")
        self.assertEqual(self.site.get("/carol/", [basic("carol", "carolpw")]).status, 404)
        self.assertEqual(self.site.get("/carol/", [basic("émile", "pässwörd")]).status, 404)
        self.assertEqual(self.site.get("/carol/", [basic("alice", "alicepw")]).status, 401)

    def test_an_address_rule_spares_the_prompt(self):
        conn = self.site.connect(peer=("10.0.0.7", 5555))
        conn.request("GET", "/mixed/")
        self.assertEqual(self.site.wait_for(conn)[0].status, 404)
        self.assertEqual(self.site.get("/mixed/").status, 401)

    def test_no_prompt_when_a_password_could_not_help(self):
        # Apache 2.4.71 answered this 403 at once, asking nothing.
        r = self.site.get("/both/", [basic("alice", "alicepw")])
        self.assertEqual((r.status, r.header("WWW-Authenticate")), (403, None))
        conn = self.site.connect(peer=("10.0.0.7", 5555))
        conn.request("GET", "/both/")
        self.assertEqual(self.site.wait_for(conn)[0].status, 401)
        conn = self.site.connect(peer=("10.0.0.7", 5555))
        conn.request("GET", "/both/", [basic("alice", "alicepw")])
        self.assertEqual(self.site.wait_for(conn)[0].status, 404)

    def test_malformed_authorization_headers(self):
        cases = [
            ("Basic !!!notbase64", (400,)),
            ("Basic " + base64.b64encode(b"no-colon").decode(), (400,)),
            ("Basic", (401,)),
            ("Basic " + "QUFB" * 2500, (400, 431)),  # 10 KB
            ("Basic " + base64.b64encode(b"\xff\xfe:\xc3").decode(), (401,)),  # not UTF-8
            ("Bearer abc", (401,)),
            ("", (401,)),
        ]
        for value, statuses in cases:
            r = self.site.get("/private/", [("Authorization", value)])
            self.assertIn(r.status, statuses, value[:40])
        self.assertIn(
            "AH01614: client used wrong authentication scheme: /private/",
            self.site.messages(plugin="access"),
        )
        self.assertIn(
            r"AH01618: user \xff\xfe not found: /private/", self.site.messages(plugin="access")
        )

    def test_a_success_is_remembered(self):
        calls = []
        real = htpasswd.verify

        def counting(password, hashed):
            calls.append(password)
            return real(password, hashed)

        self.patch(htpasswd, "verify", counting)
        for _ in range(3):
            self.assertEqual(self.site.get("/private/", [basic("dave", "davepw")]).status, 404)
        self.assertEqual(len(calls), 1)
        # A wrong password is never served from the cache.
        self.assertEqual(self.site.get("/private/", [basic("dave", "davepwx")]).status, 401)
        self.assertEqual(len(calls), 2)


class FileChangeTests(SynchronousTestCase):
    def test_file_is_read_again_when_it_changes(self):
        self.patch(htpasswd, "CHECK_EVERY", 0)
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        users = os.path.join(folder, "users")
        with open(users, "w") as f:
            f.write(
                "u:{SHA}"
                + base64.b64encode(__import__("hashlib").sha1(b"one").digest()).decode()
                + "\n"
            )
        site = site_for(
            self,
            f"""
            AuthType Basic
            AuthName r
            AuthUserFile {users}
            Require valid-user
        """,
        )
        self.assertEqual(site.get("/", [basic("u", "one")]).status, 200)
        with open(users + ".new", "w") as f:
            f.write("u:$apr1$abcdefgh$cy3DSYyOwfhsyu7QOMQzd.\n")  # "hello"
        os.rename(users + ".new", users)
        self.assertEqual(site.get("/", [basic("u", "one")]).status, 401)
        self.assertEqual(site.get("/", [basic("u", "hello")]).status, 200)
        os.unlink(users)
        self.assertEqual(site.get("/", [basic("u", "hello")]).status, 500)
        self.assertTrue(
            any(
                "AH01620: Could not open password file" in m for m in site.messages(plugin="access")
            )
        )

    def test_stat_at_most_once_a_second(self):
        import time

        clock = [100.0]
        self.patch(time, "monotonic", lambda: clock[0])
        stats = []
        real_stat = os.stat
        self.patch(os, "stat", lambda p, *a, **k: stats.append(p) or real_stat(p, *a, **k))
        f = htpasswd.WatchedFile(os.path.join(FIXTURES, "users.htpasswd"), htpasswd.parse_passwords)
        f.get()
        f.get()
        clock[0] += 0.5
        f.get()
        self.assertEqual(len(stats), 1)
        clock[0] += 0.6
        f.get()
        self.assertEqual(len(stats), 2)


class RealSocketTests(TestCase):
    """Every directive of the plugin over a real socket, bcrypt in threads."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.folder)
        self.access_log = os.path.join(self.folder, "access.log")
        self.logged = LogCapture()
        self.addCleanup(self.logged.stop)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {DOCROOT}
            Plugin access
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            Plugin access_log
            AccessLog {self.access_log} "%h %u %>s %U"
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            <Location /cgi-bin/>
                {PROTECTED}
                Require user dave
            </Location>
            <Location /staff>
                {PROTECTED}
                <RequireAll>
                    Require group staff
                    <RequireAny>
                        Require ip 127.0.0.0/8
                        Require all denied
                    </RequireAny>
                    <RequireNone>
                        Require ip 10.0.0.66
                    </RequireNone>
                    Require not ip 10.0.0.67
                </RequireAll>
            </Location>
            <Location /local-name>
                Require host localhost
            </Location>
            <Location /other-name>
                Require host example.invalid
            </Location>
            <Location /none>
                AuthType None
                Require all granted
            </Location>
        """,
        )
        self.port = self.server.port

    def get(self, path, *headers):
        return request(self.port, "GET", path, headers)

    @defer.inlineCallbacks
    def test_basic_groups_and_sections(self):
        r = yield self.get("/staff/")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Private Area"')
        r = yield self.get("/staff/", basic("dave", "davepw"))  # bcrypt, cost 5
        self.assertEqual(r.status, 404)
        r = yield self.get("/staff/", basic("carol", "carolpw"))  # {SHA}
        self.assertEqual(r.status, 404)
        r = yield self.get("/staff/", basic("alice", "alicepw"))  # not in staff
        self.assertEqual(r.status, 401)
        r = yield self.get("/staff/", basic("dave", "wrong"))
        self.assertEqual(r.status, 401)
        r = yield self.get("/none/")
        self.assertEqual(r.status, 404)  # no prompt, no such folder
        yield self.server.stop()
        from axkit.log import flush_all

        flush_all()
        with open(self.access_log) as f:
            log = f.read().splitlines()
        self.assertEqual(
            log,
            [
                "127.0.0.1 - 401 /staff/",
                "127.0.0.1 dave 404 /staff/",
                "127.0.0.1 carol 404 /staff/",
                "127.0.0.1 alice 401 /staff/",
                "127.0.0.1 dave 401 /staff/",
                "127.0.0.1 - 404 /none/",
            ],
        )
        errors = [format_log_line(e) for e in self.logged.events if e.get("log_tag")]
        self.assertEqual(len(errors), 2, errors)
        self.assertIn('AH01631: user alice: authorization failure for "/staff/"', errors[0])
        self.assertIn(
            'AH01617: user dave: authentication failure for "/staff/": Password Mismatch', errors[1]
        )
        for line in errors:
            self.assertEqual(fail2ban_host(line), "127.0.0.1", line)

    @defer.inlineCallbacks
    def test_cgi_sees_the_user_not_the_password(self):
        r = yield self.get("/cgi-bin/env.py", basic("dave", "davepw"))
        self.assertEqual(r.status, 200)
        env = json.loads(r.body)["env"]
        self.assertEqual(env["REMOTE_USER"], "dave")
        self.assertEqual(env["AUTH_TYPE"], "Basic")
        self.assertNotIn("HTTP_AUTHORIZATION", env)
        r = yield self.get("/cgi-bin/env.py", basic("bob", "bobpw"))
        self.assertEqual(r.status, 401)

    @defer.inlineCallbacks
    def test_require_host_double_reverse(self):
        from axkit.plugins.access import double_reverse

        name = yield threads.deferToThread(double_reverse, "127.0.0.1")
        if name != "localhost":
            raise SkipTest(f"127.0.0.1 resolves to {name!r} here, not localhost")
        r = yield self.get("/local-name/")
        self.assertEqual(r.status, 404)  # 127.0.0.1 <-> localhost: let in
        r = yield self.get("/other-name/")
        self.assertEqual(r.status, 403)

    @defer.inlineCallbacks
    def test_concurrent_bcrypt_checks(self):
        import threading

        where = []
        real = htpasswd.verify

        def recording(password, hashed):
            where.append(threading.current_thread() is threading.main_thread())
            return real(password, hashed)

        self.patch(htpasswd, "verify", recording)
        started = [
            self.get("/staff/", basic("dave", "davepw" if i % 2 else "bad")) for i in range(6)
        ]
        results = yield defer.gatherResults(started)
        self.assertEqual(sorted(r.status for r in results), [401, 401, 401, 404, 404, 404])
        # Never on the reactor's thread; the good password cost one bcrypt
        # or a few (those in flight together), the bad ones one each.
        self.assertTrue(where)
        self.assertNotIn(True, where)
