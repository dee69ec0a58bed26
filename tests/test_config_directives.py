"""Declaring directives: typed arguments, clear errors, scopes, repeat,
defaults, and two plugins claiming one name."""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from axkit.config import (
    ANY,
    APPEND,
    GLOBAL,
    LOCATION,
    MAP,
    REPLACE,
    SERVER,
    ConfigError,
    ConfigErrors,
    Directive,
    count,
    duration,
    endpoint,
    flag,
    integer,
    list_of,
    many,
    one_of,
    optional,
    path,
    regex,
    size,
    string,
)
from axkit.config.types import Context
from axkit.testing import load_config

CTX = Context("/etc/axkit/site.conf", 3, "/etc/axkit")


class TypeTests(SynchronousTestCase):
    def bad(self, t, word, expected):
        e = self.assertRaises(ConfigError, t, word, CTX)
        self.assertIn(expected, str(e))

    def test_string(self):
        self.assertEqual(string("hello world", CTX), "hello world")

    def test_integer(self):
        self.assertEqual(integer("-12", CTX), -12)
        self.bad(integer, "12x", "expected an integer, got '12x'")

    def test_count(self):
        self.assertEqual(count("0", CTX), 0)
        self.bad(count, "-1", "expected a number >= 0")

    def test_size(self):
        self.assertEqual(size("512", CTX), 512)
        self.assertEqual(size("64K", CTX), 64 * 1024)
        self.assertEqual(size("10M", CTX), 10 * 1024**2)
        self.assertEqual(size("1g", CTX), 1024**3)
        self.bad(size, "10X", "expected a size like 512, 64K, 10M or 1G, got '10X'")

    def test_duration(self):
        self.assertEqual(duration("30", CTX), 30)
        self.assertEqual(duration("30s", CTX), 30)
        self.assertEqual(duration("500ms", CTX), 0.5)
        self.assertEqual(duration("5m", CTX), 300)
        self.assertEqual(duration("2h", CTX), 7200)
        self.bad(duration, "soon", "expected a duration like 30s")

    def test_flag(self):
        self.assertIs(flag("On", CTX), True)
        self.assertIs(flag("off", CTX), False)
        self.bad(flag, "maybe", "expected On or Off, got 'maybe'")

    def test_one_of(self):
        t = one_of("Fast", "Safe")
        self.assertEqual(t("fast", CTX), "Fast")
        self.bad(t, "slow", "expected one of Fast, Safe; got 'slow'")

    def test_path_relative_to_config_file(self):
        self.assertEqual(path("htdocs", CTX), "/etc/axkit/htdocs")
        self.assertEqual(path("/srv/www", CTX), "/srv/www")

    def test_regex(self):
        self.assertTrue(regex(r"\.html$", CTX).search("/a.html"))
        self.bad(regex, "(", "bad regular expression '('")

    def test_endpoint(self):
        self.assertEqual(endpoint("8080", CTX), "tcp:8080")
        self.assertEqual(endpoint("tcp:0:interface=127.0.0.1", CTX), "tcp:0:interface=127.0.0.1")
        self.bad(endpoint, "nonsense:1", "bad listening endpoint 'nonsense:1'")

    def test_list_of(self):
        self.assertEqual(list_of()("GET,HEAD, POST", CTX), ("GET", "HEAD", "POST"))
        self.assertEqual(list_of(size)("1K,2K", CTX), (1024, 2048))
        self.bad(list_of(), "a,,b", "without empty items")
        self.bad(list_of(integer), "1,x", "expected an integer, got 'x'")


class Plugin:
    """Declares one directive of each shape (loaded through a known-plugins map)."""

    name = "shapes"
    directives = [
        Directive("Greeting", string, doc="Said to every visitor."),
        Directive("Retries", int, default=3, doc="A plain int is our integer."),
        Directive("Verbose", bool, default=False),
        Directive("Window", (duration, optional(size, 1024)), doc="Duration and size."),
        Directive("Allow", many(string), merge=APPEND, doc="Adds up."),
        Directive("Methods", list_of(one_of("GET", "POST")), doc="A list in one word."),
        Directive("Header", (string, string), merge=MAP, doc="Name and value."),
        Directive("OnlyServer", string, scopes={GLOBAL, SERVER}),
        Directive("Backend", endpoint, repeat=True, doc="The last one wins."),
        Directive("Once", many(string), merge=APPEND, repeat=False),
    ]


class Info:
    def __init__(self, name, cls):
        self.name, self.cls, self.module, self.description = name, cls, "x." + name, ""

    def load(self):
        return self.cls


KNOWN = {"shapes": Info("shapes", Plugin)}


def load(text):
    import textwrap

    from axkit.config.loader import load_string

    return load_string("Plugin shapes\n" + textwrap.dedent(text), "site.conf", known_plugins=KNOWN)


class DeclarationTests(SynchronousTestCase):
    def errors(self, text):
        e = self.assertRaises(ConfigErrors, load, text)
        return [str(x) for x in e.errors]

    def test_values_and_defaults(self):
        conf = (
            load("""
            Greeting "Hello there"
            Window 30s 64K
            Allow a b
            Allow c
            Methods GET,POST
            Header X-A 1
            Header X-B 2
        """)
            .servers[0]
            .base.conf
        )
        self.assertEqual(conf.greeting, "Hello there")
        self.assertEqual(conf.retries, 3)
        self.assertIs(conf.verbose, False)
        self.assertEqual(conf.window, (30.0, 65536))
        self.assertEqual(conf.allow, (("a", "b"), ("c",)))
        self.assertEqual(conf.methods, ("GET", "POST"))
        self.assertEqual(conf.header, {"X-A": "1", "X-B": "2"})
        self.assertEqual(conf.only_server, None)

    def test_optional_argument_default(self):
        conf = load("Window 5m\n").servers[0].base.conf
        self.assertEqual(conf.window, (300.0, 1024))

    def test_builtin_python_types(self):
        conf = load("Retries 7\nVerbose on\n").servers[0].base.conf
        self.assertEqual(conf.retries, 7)
        self.assertIs(conf.verbose, True)

    def test_errors_are_file_line_message(self):
        errors = self.errors("""
            Retries many
            Window
            Methods GET,PUT
        """)
        self.assertEqual(
            errors,
            [
                "site.conf:3: expected an integer, got 'many'",
                "site.conf:4: Window takes 1 to 2 arguments, got 0 (usage: Window DURATION [SIZE])",
                "site.conf:5: expected one of GET, POST; got 'PUT'",
            ],
        )

    def test_every_error_is_reported(self):
        errors = self.errors("Retries x\nVerbose maybe\nNoSuchThing 1\n")
        self.assertEqual(len(errors), 3)
        self.assertTrue(errors[2].startswith('site.conf:4: unknown directive "NoSuchThing"'))

    def test_unknown_directive_suggests(self):
        errors = self.errors("Greting hi\n")
        self.assertEqual(
            errors, ['site.conf:2: unknown directive "Greting" (did you mean "Greeting"?)']
        )

    def test_wrong_scope(self):
        errors = self.errors("<Location /a>\n  OnlyServer x\n</Location>\n")
        self.assertEqual(len(errors), 1)
        self.assertIn(
            "site.conf:3: OnlyServer is not allowed in <Location>/<LocationMatch>", errors[0]
        )
        self.assertIn("allowed in: the global scope (outside any section), <Server>", errors[0])

    def test_not_repeatable(self):
        errors = self.errors("Greeting a\nGreeting b\n")
        self.assertEqual(
            errors, ["site.conf:3: Greeting is given twice in this scope (first at site.conf:2)"]
        )
        errors = self.errors("Once a\nOnce b\n")
        self.assertIn("Once is given twice in this scope", errors[0])

    def test_same_directive_in_inner_scope_is_fine(self):
        config = load("Greeting a\n<Location /x>\n Greeting b\n</Location>\n")
        self.assertEqual(config.servers[0].resolve("/x").conf.greeting, "b")

    def test_repeatable_replace_keeps_last(self):
        conf = load("Backend tcp:1\nBackend tcp:2\n").servers[0].base.conf
        self.assertEqual(conf.backend, "tcp:2")

    def test_case_insensitive_names(self):
        conf = load("gReEtInG hi\n").servers[0].base.conf
        self.assertEqual(conf.greeting, "hi")

    def test_bad_declarations_fail_early(self):
        self.assertRaises(TypeError, Directive, "X", string, scopes={"everywhere"})
        self.assertRaises(TypeError, Directive, "X", string, merge="sum")
        self.assertRaises(TypeError, Directive, "X", "not a type")
        self.assertRaises(TypeError, Directive, "X", (many(string), string))

    def test_attribute_names(self):
        d = Directive("LimitRequestBody", size)
        self.assertEqual(d.attr, "limit_request_body")
        self.assertEqual(Directive("ServerName", string).attr, "server_name")

    def test_usage_and_repeat_flags(self):
        d = Plugin.directives[3]
        self.assertEqual(d.usage, "Window DURATION [SIZE]")
        self.assertFalse(Plugin.directives[0].repeat)
        self.assertTrue(Plugin.directives[4].repeat)
        self.assertEqual(Plugin.directives[4].merge, APPEND)


class ConflictTests(SynchronousTestCase):
    def test_two_plugins_one_directive_name(self):
        e = self.assertRaises(
            ConfigErrors,
            load_config,
            """
            Plugin tests.configplugins.ClashA
            Plugin tests.configplugins.ClashB
        """,
        )
        self.assertEqual(len(e.errors), 1)
        message = str(e.errors[0])
        self.assertIn("<test config>:3:", message)
        self.assertIn("'clash_a'", message)
        self.assertIn("'clash_b'", message)
        self.assertIn("'Shared'", message)

    def test_plugin_clashing_with_core(self):
        class Bad:
            name = "bad"
            directives = [Directive("documentroot", string)]

        from axkit.config.loader import load_string

        e = self.assertRaises(
            ConfigErrors,
            load_string,
            "Plugin bad\n",
            "c.conf",
            known_plugins={"bad": Info("bad", Bad)},
        )
        self.assertIn("'core' and 'bad'", str(e))

    def test_directive_of_unloaded_plugin_names_it(self):
        e = self.assertRaises(ConfigErrors, load_config, "DirectoryListing On\n")
        self.assertIn(
            "belongs to plugin 'serve_dir', which is not loaded (add: Plugin serve_dir)", str(e)
        )


class ParserErrorTests(SynchronousTestCase):
    def test_unclosed_section(self):
        e = self.assertRaises(ConfigErrors, load_config, "<Location /a>\n")
        self.assertEqual(str(e), "<test config>:1: <Location> is never closed")

    def test_include_missing_file(self):
        e = self.assertRaises(ConfigErrors, load_config, "Include /nonexistent/x.conf\n")
        self.assertIn("<test config>:1: Include /nonexistent/x.conf:", str(e))

    def test_include_glob_and_errors_in_included_file(self):
        folder = self.mktemp()
        os.makedirs(os.path.join(folder, "conf.d"))
        with open(os.path.join(folder, "conf.d", "a.conf"), "w") as f:
            f.write("# a comment\nBogus 1\n")
        with open(os.path.join(folder, "site.conf"), "w") as f:
            f.write("Include conf.d/*.conf\n")
        from axkit.config.loader import load_file

        e = self.assertRaises(ConfigErrors, load_file, os.path.join(folder, "site.conf"))
        self.assertTrue(
            re.search(r"conf\.d/a\.conf:2: unknown directive \"Bogus\"", str(e)), str(e)
        )

    def test_bad_locationmatch(self):
        e = self.assertRaises(ConfigErrors, load_config, "<LocationMatch (>\n</LocationMatch>\n")
        self.assertIn("<test config>:1: <LocationMatch> bad regular expression", str(e))


class ScopeConstantsTests(SynchronousTestCase):
    def test_any_is_every_scope(self):
        self.assertEqual(ANY, frozenset({GLOBAL, SERVER, LOCATION, "files"}))
        self.assertEqual({REPLACE, APPEND, MAP}, {"replace", "append", "map"})
