"""The access plugin's Require rules, in memory: Apache 2.4's mod_authz_core
logic, scope merging, config errors; and the password hashes."""

import os

from twisted.trial.unittest import SynchronousTestCase

from axkit.auth import htpasswd
from axkit.auth.apr1 import apr1, salt_of
from axkit.config.errors import ConfigErrors
from axkit.testing import MemorySite, load_config

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "access_fixtures")
DOCROOT = os.path.join(HERE, "alias_fixtures", "docroot")


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


def status_from(site, peer, path="/", method="GET"):
    conn = site.connect(peer=(peer, 51000))
    conn.request(method, path)
    return site.wait_for(conn)[0].status


class RequireTests(SynchronousTestCase):
    def test_all_granted_and_denied(self):
        site = site_for(
            self,
            """
            Require all denied
            <Location /open>
                Require all granted
            </Location>
        """,
        )
        self.assertEqual(site.get("/").status, 403)
        self.assertEqual(site.get("/open").status, 404)  # allowed, no such file
        self.assertIn(
            f"AH01630: client denied by server configuration: {DOCROOT}/index.html",
            site.messages(plugin="access"),
        )

    def test_ip_networks_partial_and_netmask(self):
        site = site_for(
            self,
            """
            <Location /a>
                Require ip 10.1
            </Location>
            <Location /b>
                Require ip 192.168.0.0/255.255.0.0 2001:db8::/32
            </Location>
            <Location /c>
                Require ip 127.0.0.1
            </Location>
        """,
        )
        self.assertEqual(status_from(site, "10.1.200.3", "/a"), 404)
        self.assertEqual(status_from(site, "10.2.0.1", "/a"), 403)
        self.assertEqual(status_from(site, "192.168.7.7", "/b"), 404)
        self.assertEqual(status_from(site, "2001:db8::5", "/b"), 404)
        self.assertEqual(status_from(site, "2001:db9::5", "/b"), 403)
        # An IPv4 client on an IPv6 socket is still an IPv4 client.
        self.assertEqual(status_from(site, "::ffff:127.0.0.1", "/c"), 404)
        self.assertEqual(status_from(site, "127.0.0.2", "/c"), 403)

    def test_several_lines_any_one_suffices(self):
        site = site_for(
            self,
            """
            Require ip 10.0.0.0/8
            Require ip 172.16.0.0/12
        """,
        )
        self.assertEqual(status_from(site, "10.9.9.9"), 200)
        self.assertEqual(status_from(site, "172.16.1.1"), 200)
        self.assertEqual(status_from(site, "8.8.8.8"), 403)

    def test_require_all_with_negation(self):
        site = site_for(
            self,
            """
            <RequireAll>
                Require ip 10.0.0.0/8
                Require not ip 10.0.0.66
            </RequireAll>
        """,
        )
        self.assertEqual(status_from(site, "10.0.0.1"), 200)
        self.assertEqual(status_from(site, "10.0.0.66"), 403)
        self.assertEqual(status_from(site, "11.0.0.1"), 403)

    def test_require_none_inside_all(self):
        # The config Apache 2.4.71 answered 403 for 127.0.0.1 (the reference).
        site = site_for(
            self,
            """
            <RequireAll>
                Require all granted
                <RequireNone>
                    Require ip 127.0.0.1
                    Require ip 10.0.0.66
                </RequireNone>
            </RequireAll>
        """,
        )
        self.assertEqual(status_from(site, "127.0.0.1"), 403)
        self.assertEqual(status_from(site, "10.0.0.66"), 403)
        self.assertEqual(status_from(site, "10.0.0.1"), 200)

    def test_nested_any_in_all(self):
        site = site_for(
            self,
            """
            <RequireAll>
                Require method GET POST
                <RequireAny>
                    Require ip 10.0.0.0/8
                    Require local
                </RequireAny>
            </RequireAll>
        """,
        )
        self.assertEqual(status_from(site, "10.0.0.1"), 200)
        self.assertEqual(status_from(site, "127.0.0.1", method="HEAD"), 200)
        self.assertEqual(status_from(site, "127.0.0.1", method="DELETE"), 403)
        self.assertEqual(status_from(site, "8.8.8.8"), 403)

    def test_inner_scope_replaces_outer(self):
        site = site_for(
            self,
            """
            Require ip 10.0.0.0/8
            <Location /lan-or-local>
                Require local
            </Location>
            <Location /nothing-new>
                DirectoryIndex index.html
            </Location>
        """,
        )
        # Only the inner rule counts: the 10/8 client is no longer let in.
        self.assertEqual(status_from(site, "10.0.0.1", "/lan-or-local"), 403)
        self.assertEqual(status_from(site, "127.0.0.1", "/lan-or-local"), 404)
        # A scope without Require keeps the outer rules.
        self.assertEqual(status_from(site, "127.0.0.1", "/nothing-new"), 403)
        self.assertEqual(status_from(site, "10.0.0.1", "/nothing-new"), 404)

    def test_files_scope(self):
        site = site_for(
            self,
            """
            <Files "*.html">
                Require all denied
            </Files>
        """,
        )
        self.assertEqual(site.get("/index.html").status, 403)
        self.assertEqual(site.get("/other.txt").status, 404)

    def test_user_rule_without_auth_type_is_a_500(self):
        site = site_for(self, "Require valid-user")
        self.assertEqual(site.get("/").status, 500)
        self.assertTrue(any("AH00027" in m for m in site.messages(plugin="access")))

    def test_auth_type_without_require_fails_closed(self):
        site = site_for(
            self,
            f"""
            <Location /private>
                AuthType Basic
                AuthName x
                AuthUserFile {FIXTURES}/users.htpasswd
            </Location>
        """,
        )
        self.assertEqual(site.get("/private/").status, 500)
        self.assertEqual(site.get("/").status, 200)

    def test_dump_config_shows_the_rules(self):
        from axkit.introspect import dump_config_text

        config = load_config(f"""
            Plugin access
            DocumentRoot {DOCROOT}
            <RequireAll>
                Require ip 10.0.0.0/8
                Require not ip 10.0.0.66
            </RequireAll>
            Require local
        """)
        text = dump_config_text(config, path="/")
        self.assertIn("<RequireAll> ip 10.0.0.0/8; not ip 10.0.0.66 </RequireAll>", text)
        self.assertIn("local", text)


class ConfigErrorTests(SynchronousTestCase):
    def error(self, body):
        with self.assertRaises(ConfigErrors) as caught:
            load_config("Plugin access\n" + body, name="site.conf")
        return str(caught.exception)

    def test_apache_s_errors(self):
        cases = [
            (
                "Require not ip 1.2.3.4",
                "site.conf:2: negative Require directive has no effect in <RequireAny>",
            ),
            (
                "<RequireNone>\nRequire ip 1.2.3.4\n</RequireNone>",
                "site.conf:2: <RequireNone> directive has no effect in <RequireAny>",
            ),
            (
                "<RequireAll>\n</RequireAll>",
                "site.conf:2: <RequireAll> directive contains no authorization directives",
            ),
            (
                "<RequireAll>\nRequire not ip 1.2.3.4\n</RequireAll>",
                "site.conf:2: <RequireAll> directive contains only negative authorization",
            ),
            (
                "<RequireAny>\nRequire all granted\nRequire not ip 1.2.3.4\n</RequireAny>",
                "site.conf:4: negative Require directive has no effect in <RequireAny>",
            ),
            ("Require ip 300.1.1.1", "site.conf:2: ip address '300.1.1.1' appears to be invalid"),
            ("Require foo", "site.conf:2: Unknown Authz provider: foo"),
            (
                "Require all maybe",
                "site.conf:2: Argument for 'Require all' must be 'granted' or 'denied'",
            ),
            ("Require host", "site.conf:2: Require host needs at least one host name"),
            ("Require", "site.conf:2: Require needs a rule"),
            ("RequireAll", "site.conf:2: RequireAll is a section: write <RequireAll"),
            (
                "<RequireAll>\nAuthType Basic\n</RequireAll>",
                "site.conf:3: AuthType is not allowed in <RequireAll>",
            ),
            ("AuthType Digest", "site.conf:2: expected one of Basic, None"),
            ("<RequireEvery>\n</RequireEvery>", "site.conf:2: unknown section <requireevery>"),
        ]
        for body, expected in cases:
            self.assertIn(expected, self.error(body), body)

    def test_section_of_a_plugin_not_loaded(self):
        with self.assertRaises(ConfigErrors) as caught:
            load_config("<RequireAll>\nRequire all granted\n</RequireAll>", name="x.conf")
        self.assertIn(
            "x.conf:1: section <requireall> belongs to plugin 'access', which "
            "is not loaded (add: Plugin access)",
            str(caught.exception),
        )


class HashTests(SynchronousTestCase):
    """What htpasswd (Apache 2.4.71) wrote: tests/access_fixtures/."""

    def users(self):
        with open(os.path.join(FIXTURES, "users.htpasswd"), "rb") as f:
            return htpasswd.parse_passwords(f.read())

    def test_apr1_vectors_from_htpasswd_and_openssl(self):
        vectors = [
            (b"bobpw", b"$apr1$bRqQNdk2$vtElhoLgAbDN.4YHTxked/"),
            (b"pw1", b"$apr1$78W6c326$tsXcXThx6KiGYnFC4wGiU."),
            (b"", b"$apr1$ZrRU3oyu$KBBsc6ZTNN3bXDIL4oWzW0"),
            (b"x" * 70, b"$apr1$ZeyI9J0n$UAXWiJYwZ6.zwavKX2GuO1"),
            ("pässwörd".encode(), b"$apr1$hQSfvAwa$qkitwQ86ykKNnuBB5glzO1"),
            (b"hello", b"$apr1$abcdefgh$cy3DSYyOwfhsyu7QOMQzd."),  # openssl passwd -apr1
        ]
        for password, hashed in vectors:
            self.assertEqual(apr1(password, salt_of(hashed)), hashed)
            self.assertTrue(htpasswd.verify(password, hashed))
            self.assertFalse(htpasswd.verify(password + b"!", hashed))

    def test_every_kind_in_the_fixture(self):
        users = self.users()
        for user, password in [
            (b"alice", b"alicepw"),
            (b"bob", b"bobpw"),
            (b"carol", b"carolpw"),
            (b"dave", b"davepw"),
            ("émile".encode(), "pässwörd".encode()),
        ]:
            self.assertTrue(htpasswd.verify(password, users[user]), user)
            self.assertFalse(htpasswd.verify(password[:-1], users[user]), user)
        self.assertTrue(users[b"alice"].startswith(b"$2y$04$"))
        self.assertTrue(users[b"dave"].startswith(b"$2y$05$"))  # htpasswd -B's default
        self.assertTrue(htpasswd.is_slow(users[b"dave"]))
        self.assertFalse(htpasswd.is_slow(users[b"bob"]))

    def test_bcrypt_variants_and_long_passwords(self):
        import bcrypt

        hashed = bcrypt.hashpw(b"y" * 72, bcrypt.gensalt(4))
        for prefix in (b"$2a$", b"$2b$", b"$2y$"):
            variant = prefix + hashed[4:]
            self.assertTrue(htpasswd.verify(b"y" * 72, variant))
            # As Apache (crypt_blowfish): bytes past the 72nd do not count.
            self.assertTrue(htpasswd.verify(b"y" * 72 + b"ignored", variant))
            self.assertFalse(htpasswd.verify(b"y" * 71, variant))

    def test_unsupported_and_malformed_hashes(self):
        for hashed in (b"$6$salt$abc", b"abJnggxhB/yWI", b"$2y$04$short"):
            self.assertRaises(htpasswd.Unsupported, htpasswd.verify, b"x", hashed)

    def test_file_parsing(self):
        users = htpasswd.parse_passwords(b"# comment\n\nu:first\r\nu:second\n  v:h  \n")
        self.assertEqual(users, {b"u": b"first", b"v": b"h"})
        groups = htpasswd.parse_groups(b"a: x y\nb:y\n# c: z\na: z\n")
        self.assertEqual(groups, {b"x": {b"a"}, b"y": {b"a", b"b"}, b"z": {b"a"}})


class EvaluateTests(SynchronousTestCase):
    """mod_authz_core's table, rule by rule (some rows cannot be told apart
    through a valid config, so they are pinned here)."""

    class Facts:
        def __init__(self, ip, user=None):
            import ipaddress

            self._ip = ipaddress.ip_address(ip)
            self.user = user
            self.method = "GET"

        def address(self):
            return self._ip

    def test_table(self):
        from axkit.auth.require import (
            DENIED,
            GRANTED,
            NEUTRAL,
            NO_USER,
            Section,
            evaluate,
            parse_rule,
        )

        rule = lambda text: parse_rule(text.split())  # noqa: E731
        outside, inside = self.Facts("10.0.0.1"), self.Facts("10.0.0.66")
        self.assertEqual(evaluate(rule("not ip 10.0.0.66"), outside), NEUTRAL)
        self.assertEqual(evaluate(rule("not ip 10.0.0.66"), inside), DENIED)
        self.assertEqual(evaluate(rule("not valid-user"), outside), NEUTRAL)
        self.assertEqual(evaluate(rule("valid-user"), outside), NO_USER)
        self.assertEqual(evaluate(rule("valid-user"), self.Facts("10.0.0.1", b"u")), GRANTED)
        none = Section("none", [rule("ip 10.0.0.66")])
        self.assertEqual(evaluate(none, outside), NEUTRAL)
        self.assertEqual(evaluate(none, inside), DENIED)
        both = Section("all", [rule("valid-user"), rule("ip 10.0.0.0/8")])
        self.assertEqual(evaluate(both, outside), NO_USER)
        self.assertEqual(evaluate(both, self.Facts("11.0.0.1")), DENIED)
        either = Section("any", [rule("ip 11.0.0.0/8"), rule("valid-user")])
        self.assertEqual(evaluate(either, outside), NO_USER)
        self.assertEqual(evaluate(Section("any", [rule("ip 11.0.0.0/8")]), outside), DENIED)
