"""Scopes: name-based virtual hosts, <Location>, <LocationMatch>, <Files>,
the order they apply in, plugin lists and merging (docs/config.md)."""

import json

from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import MemorySite, load_config

PLUGINS = """
Plugin tests.configplugins.MapToFile
Plugin tests.configplugins.Report
DocumentRoot /srv/site
"""


class ScopeTestCase(SynchronousTestCase):
    def site(self, text):
        site = MemorySite(PLUGINS + text)
        self.addCleanup(site.close)
        return site

    def report(self, site, path="/", host="localhost", target=None):
        conn = site.connect()
        conn.request("GET", target or path, [("Host", host)])
        response = site.wait_for(conn)[0]
        self.assertEqual(response.status, 200, response)
        return json.loads(response.body)


VHOSTS = """
Color global
<Server first>
    ServerName www.example.com
    Color first
</Server>
<Server second>
    ServerName Second.Example.com
    ServerAlias *.example.org alt.example.net
    ServerAlias third.example.net
    Color second
</Server>
"""


class VirtualHostTests(ScopeTestCase):
    def test_exact_name(self):
        site = self.site(VHOSTS)
        self.assertEqual(self.report(site, host="www.example.com")["color"], "first")
        self.assertEqual(self.report(site, host="second.example.com")["color"], "second")

    def test_port_stripped_and_case_insensitive(self):
        site = self.site(VHOSTS)
        self.assertEqual(self.report(site, host="SECOND.example.COM:8080")["color"], "second")
        self.assertEqual(self.report(site, host="www.example.com.")["color"], "first")

    def test_wildcard_alias(self):
        site = self.site(VHOSTS)
        self.assertEqual(self.report(site, host="a.b.example.org")["color"], "second")
        # *.example.org does not cover example.org itself.
        self.assertEqual(self.report(site, host="example.org")["color"], "first")

    def test_every_alias_line_counts(self):
        site = self.site(VHOSTS)
        self.assertEqual(self.report(site, host="alt.example.net")["color"], "second")
        self.assertEqual(self.report(site, host="third.example.net")["color"], "second")

    def test_unknown_host_goes_to_first_server(self):
        site = self.site(VHOSTS)
        self.assertEqual(self.report(site, host="nobody.invalid")["color"], "first")
        self.assertEqual(self.report(site, host="127.0.0.1:8080")["color"], "first")

    def test_absolute_form_target_names_the_host(self):
        site = self.site(VHOSTS)
        r = self.report(site, host="www.example.com", target="http://second.example.com/x")
        self.assertEqual(r["color"], "second")

    def test_server_name_with_port(self):
        site = self.site("""
            <Server a>
                ServerName a.test
                Color a
            </Server>
            <Server b>
                ServerName B.test:8080
                Color b
            </Server>
        """)
        self.assertEqual(self.report(site, host="b.test")["color"], "b")
        self.assertEqual(self.report(site, host="b.test:9999")["color"], "b")

    def test_servers_share_one_listener(self):
        config = load_config(PLUGINS + "Listen tcp:0:interface=127.0.0.1\n" + VHOSTS)
        self.assertEqual(list(config.listeners), ["tcp:0:interface=127.0.0.1"])
        self.assertEqual(
            [s.label() for s in config.listeners["tcp:0:interface=127.0.0.1"]],
            ["www.example.com", "Second.Example.com"],
        )

    def test_server_with_own_listen(self):
        config = load_config(
            PLUGINS
            + """
            Listen tcp:0:interface=127.0.0.1
            <Server a>
                ServerName a.test
            </Server>
            <Server b>
                ServerName b.test
                Listen unix:/tmp/axkit-test-never-opened.sock
            </Server>
        """
        )
        self.assertEqual(
            [s.label() for s in config.listeners["tcp:0:interface=127.0.0.1"]], ["a.test"]
        )
        self.assertEqual(
            [s.label() for s in config.listeners["unix:/tmp/axkit-test-never-opened.sock"]],
            ["b.test"],
        )


LOCATIONS = """
Color global
<Location /docs>
    Color docs
</Location>
<Location /docs/api/>
    Color api
</Location>
<LocationMatch \\.json$>
    Color json
</LocationMatch>
"""


class LocationTests(ScopeTestCase):
    def test_prefix_on_segment_boundary(self):
        site = self.site(LOCATIONS)
        self.assertEqual(self.report(site, "/docs")["color"], "docs")
        self.assertEqual(self.report(site, "/docs/")["color"], "docs")
        self.assertEqual(self.report(site, "/docs/guide.html")["color"], "docs")
        self.assertEqual(self.report(site, "/docsearch")["color"], "global")
        self.assertEqual(self.report(site, "/")["color"], "global")

    def test_prefix_with_trailing_slash(self):
        site = self.site(LOCATIONS)
        self.assertEqual(self.report(site, "/docs/api")["color"], "docs")
        self.assertEqual(self.report(site, "/docs/api/x")["color"], "api")

    def test_matches_decoded_normalised_path(self):
        site = self.site(LOCATIONS)
        self.assertEqual(self.report(site, "/%64ocs/x")["color"], "docs")
        self.assertEqual(self.report(site, "/other/../docs/x")["color"], "docs")
        self.assertEqual(self.report(site, "//docs//x")["color"], "docs")

    def test_location_is_case_sensitive(self):
        site = self.site(LOCATIONS)
        self.assertEqual(self.report(site, "/DOCS/x")["color"], "global")

    def test_locationmatch_regex(self):
        site = self.site(LOCATIONS)
        self.assertEqual(self.report(site, "/data/x.json")["color"], "json")
        self.assertEqual(self.report(site, "/data/x.jsonp")["color"], "global")
        # Both match: config-file order, so the later LocationMatch wins.
        self.assertEqual(self.report(site, "/docs/x.json")["color"], "json")

    def test_resolution_is_cached(self):
        config = load_config(PLUGINS + LOCATIONS)
        server = config.servers[0]
        self.assertIs(server.resolve("/docs/a"), server.resolve("/docs/b"))
        self.assertIs(server.resolve("/nothing"), server.base)
        self.assertIsNot(server.resolve("/docs/a"), server.resolve("/docs/api/a"))

    def test_sections_resolved_at_load(self):
        config = load_config(PLUGINS + LOCATIONS + "<Files *.txt>\nColor txt\n</Files>\n")
        server = config.servers[0]
        cached = set(server._cache.values())
        self.assertIn(server.resolve("/docs/a"), cached)
        self.assertIn(server.resolve("/x.json"), cached)
        self.assertIn(server.resolve_file(server.base, "a.txt"), cached)

    def test_conf_is_read_only(self):
        config = load_config(PLUGINS + LOCATIONS + "Pair a b\n")
        conf = config.servers[0].resolve("/docs").conf
        self.assertRaises(AttributeError, setattr, conf, "color", "x")
        self.assertRaises(TypeError, conf.pair.__setitem__, "a", "c")
        self.assertRaises(TypeError, conf.pair.update, {"z": 1})
        self.assertEqual(conf.pair, {"a": "b"})
        self.assertRaises(TypeError, config.servers[0].base.conf.pair.pop, "a")


FILES = """
Color global
<Files *.txt>
    Color txt
</Files>
<Location /docs>
    Color docs
    <Files secret.*>
        Color secret
    </Files>
</Location>
"""


class FilesTests(ScopeTestCase):
    def test_files_glob_on_file_name(self):
        site = self.site(FILES)
        self.assertEqual(self.report(site, "/a/readme.txt")["color"], "txt")
        self.assertEqual(self.report(site, "/a/readme.txt.html")["color"], "global")

    def test_files_applies_after_location(self):
        site = self.site(FILES)
        self.assertEqual(self.report(site, "/docs/readme.txt")["color"], "txt")

    def test_nested_files_only_inside_its_location(self):
        site = self.site(FILES)
        self.assertEqual(self.report(site, "/docs/secret.txt")["color"], "secret")
        self.assertEqual(self.report(site, "/other/secret.txt")["color"], "txt")
        self.assertEqual(self.report(site, "/other/secret.md")["color"], "global")


ORDER = """
Color global
Tags g
Pair k1 global1
Pair k2 global2
Plugin tests.configplugins.Outer
<LocationMatch ^/a>
    Color global-locationmatch
    Tags gm
</LocationMatch>
<Server only>
    ServerName only.test
    Color server
    Tags s
    Plugin tests.configplugins.Middle
    <Location /a>
        Color location
        Tags l1 l2
        Pair k2 location2
        Plugin tests.configplugins.Inner
    </Location>
    <Files *.html>
        Color files
        Tags f
        Pair k3 files3
    </Files>
</Server>
"""


class OrderTests(ScopeTestCase):
    """global -> <Server> -> <Location>/<LocationMatch> (global ones first,
    then the server's, each in file order) -> <Files>."""

    def test_replace_order(self):
        site = self.site(ORDER)
        self.assertEqual(self.report(site, "/")["color"], "server")
        self.assertEqual(self.report(site, "/a")["color"], "location")
        self.assertEqual(self.report(site, "/a/x.html")["color"], "files")
        self.assertEqual(self.report(site, "/b/x.html")["color"], "files")

    def test_append_adds_up_outer_to_inner(self):
        site = self.site(ORDER)
        self.assertEqual(self.report(site, "/a/x.html")["tags"], ["g", "s", "gm", "l1", "l2", "f"])
        self.assertEqual(self.report(site, "/b")["tags"], ["g", "s"])

    def test_map_merges_by_key(self):
        site = self.site(ORDER)
        self.assertEqual(
            self.report(site, "/a/x.html")["pairs"],
            {"k1": "global1", "k2": "location2", "k3": "files3"},
        )
        self.assertEqual(self.report(site, "/")["pairs"], {"k1": "global1", "k2": "global2"})

    def test_plugins_add_up_innermost_first(self):
        site = self.site(ORDER)
        r = self.report(site, "/a/x")
        self.assertEqual(r["order"], ["inner", "middle", "outer"])
        self.assertEqual(self.report(site, "/b")["order"], ["middle", "outer"])

    def test_plugin_named_again_moves_inward(self):
        site = self.site("""
            Plugin tests.configplugins.Outer
            Plugin tests.configplugins.Middle
            <Location /x>
                Plugin tests.configplugins.Middle
            </Location>
        """)
        # Within one scope, plugins run in the order they are listed.
        self.assertEqual(self.report(site, "/")["order"], ["outer", "middle"])
        self.assertEqual(self.report(site, "/x")["order"], ["middle", "outer"])
