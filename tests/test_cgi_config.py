"""Configuring CGI: ScriptAlias (folder and single program), AddHandler with
Options ExecCGI, and config errors reported before anything listens."""

import os
import shutil

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.config.errors import ConfigErrors
from axkit.testing import load_config

from .cgi_support import CGI_BIN, LogCapture, plugin_name, request, serve


class AddHandlerTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.docroot, "app"))
        os.makedirs(os.path.join(self.docroot, "plain"))
        for folder in ("app", "plain"):
            shutil.copy(
                os.path.join(CGI_BIN, "sub", "deep.sh"),
                os.path.join(self.docroot, folder, "page.cgi"),
            )
        os.makedirs(os.path.join(self.docroot, "app", "home"))
        shutil.copy(
            os.path.join(CGI_BIN, "sub", "deep.sh"),
            os.path.join(self.docroot, "app", "home", "index.cgi"),
        )
        with open(os.path.join(self.docroot, "app", "notes.txt"), "w") as f:
            f.write("just text\n")
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {self.docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            AddHandler cgi-script .cgi .pl
            DirectoryIndex index.html index.cgi
            <Location /app>
                Options +ExecCGI
            </Location>
        """,
        )

    @defer.inlineCallbacks
    def test_handler_runs_where_execcgi_is_on(self):
        response = yield request(self.server.port, "GET", "/app/page.cgi/more/info")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"/app/page.cgi|/more/info\n")

    @defer.inlineCallbacks
    def test_handler_is_403_where_execcgi_is_off_and_source_is_not_sent(self):
        response = yield request(self.server.port, "GET", "/plain/page.cgi")
        self.assertEqual(response.status, 403)
        self.assertNotIn(b"printf", response.body)
        self.assertTrue(
            any("ExecCGI is off" in line and "page.cgi" in line for line in self.logs.lines())
        )

    @defer.inlineCallbacks
    def test_directory_index_program_names_itself(self):
        # As Apache's mod_dir: /app/home/ runs index.cgi with SCRIPT_NAME
        # naming it (programs take their base URL from SCRIPT_NAME's folder).
        response = yield request(self.server.port, "GET", "/app/home/?x=1")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"/app/home/index.cgi|\n")

    @defer.inlineCallbacks
    def test_other_documents_are_still_files(self):
        response = yield request(self.server.port, "GET", "/app/notes.txt")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"just text\n")

    @defer.inlineCallbacks
    def test_missing_handler_file_is_404(self):
        response = yield request(self.server.port, "GET", "/app/missing.cgi")
        self.assertEqual(response.status, 404)


class InterpreterTests(TestCase):
    """CGIInterpreter (lighttpd's cgi.assign): a document with the extension
    runs through the interpreter, without an execute bit or a #! line."""

    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = os.path.abspath(self.mktemp())
        for folder in ("app", "plain"):
            os.makedirs(os.path.join(self.docroot, folder))
            shutil.copy(
                os.path.join(CGI_BIN, "argv.txt"), os.path.join(self.docroot, folder, "page.psh")
            )
            os.chmod(os.path.join(self.docroot, folder, "page.psh"), 0o644)
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {self.docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            CGIInterpreter /bin/sh .psh .txt
            <Location /app>
                Options +ExecCGI
            </Location>
        """,
        )

    @defer.inlineCallbacks
    def test_a_document_runs_through_its_interpreter(self):
        response = yield request(self.server.port, "GET", "/app/page.psh/x/y?a=b")
        self.assertEqual(response.status, 200)
        script = os.path.join(self.docroot, "app", "page.psh")
        # argv: the interpreter, then the file ($0 to sh), nothing more.
        self.assertEqual(response.body, f"{script}|0|/app/page.psh|/x/y|{script}\n".encode())

    @defer.inlineCallbacks
    def test_an_indexed_query_is_not_given_to_the_interpreter(self):
        # ?-s must never reach an interpreter as an option (CVE-2012-1823).
        response = yield request(self.server.port, "GET", "/app/page.psh?-s+-n")
        self.assertEqual(response.status, 200)
        self.assertIn(b"|0|", response.body)

    @defer.inlineCallbacks
    def test_where_execcgi_is_off_it_is_403_and_the_source_is_not_sent(self):
        response = yield request(self.server.port, "GET", "/plain/page.psh")
        self.assertEqual(response.status, 403)
        self.assertNotIn(b"printf", response.body)
        self.assertTrue(any("ExecCGI is off" in line for line in self.logs.lines()))

    @defer.inlineCallbacks
    def test_a_file_under_scriptalias_needs_no_execute_bit(self):
        response = yield request(self.server.port, "GET", "/cgi-bin/argv.txt/p")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body.split(b"|")[2:4], [b"/cgi-bin/argv.txt", b"/p"])
        # Without an interpreter, the same folder still wants the bit.
        noexec = yield request(self.server.port, "GET", "/cgi-bin/noexec.sh")
        self.assertEqual(noexec.status, 403)


class PluginLineOrderTests(TestCase):
    @defer.inlineCallbacks
    def test_a_program_runs_with_mime_map_listed_first(self):
        # mime_map ends its phase (OK): cgi must still run the program, never
        # let serve_file send its source.
        docroot = os.path.abspath(self.mktemp())
        os.makedirs(docroot)
        shutil.copy(os.path.join(CGI_BIN, "hello.sh"), os.path.join(docroot, "hi.cgi"))
        shutil.copy(os.path.join(CGI_BIN, "argv.txt"), os.path.join(docroot, "page.psh"))
        server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin axkit.plugins.mime_map.MimeMap
            Plugin uri_to_file
            Plugin serve_file
            Plugin {plugin_name()}
            AddHandler cgi-script .cgi
            CGIInterpreter /bin/sh .psh
            Options +ExecCGI
            <Location />
                Plugin axkit.plugins.mime_map.MimeMap
            </Location>
        """,
        )
        response = yield request(server.port, "GET", "/hi.cgi")
        self.assertEqual(response.body, b"Hello, world!\n")
        response = yield request(server.port, "GET", "/page.psh")
        self.assertNotIn(b"printf", response.body)
        self.assertIn(b"|0|/page.psh|", response.body)


class FilePluginsLeaveProgramsAloneTests(TestCase):
    """compress and expires act on files: a program's answer (ScriptAlias,
    AddHandler or CGIInterpreter) gets no Vary: Accept-Encoding and no
    Expires / Cache-Control from them -- a program that says no-store must
    not also be given a lifetime a cache in front would keep."""

    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = os.path.abspath(self.mktemp())
        os.makedirs(self.docroot)
        shutil.copy(os.path.join(CGI_BIN, "hello.sh"), os.path.join(self.docroot, "hi.pl"))
        shutil.copy(os.path.join(CGI_BIN, "argv.txt"), os.path.join(self.docroot, "hi.psh"))
        # A sibling a Precompressed lookup would find for the program's file.
        with open(os.path.join(self.docroot, "hi.pl.gz"), "wb") as f:
            f.write(b"not a program")
        with open(os.path.join(self.docroot, "page.txt"), "w") as f:
            f.write("text " * 400)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {self.docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin axkit.plugins.mime_map.MimeMap
            Plugin axkit.plugins.compress.Compress
            Plugin axkit.plugins.expires.Expires
            Plugin serve_file
            AddType text/plain .txt .pl .psh .sh
            Gzip On
            GzipMinLength 10
            Precompressed On
            ExpiresDefault "access plus 5 minutes"
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            AddHandler cgi-script .pl
            CGIInterpreter /bin/sh .psh
            Options +ExecCGI
        """,
        )

    def get(self, path):
        return request(self.server.port, "GET", path, [("Accept-Encoding", "gzip")])

    @defer.inlineCallbacks
    def test_a_file_still_gets_them(self):
        response = yield self.get("/page.txt")
        self.assertEqual(response.header("Content-Encoding"), "gzip")
        self.assertEqual(response.header("Vary"), "Accept-Encoding")
        self.assertEqual(response.header("Cache-Control"), "max-age=300")

    @defer.inlineCallbacks
    def test_programs_get_neither(self):
        for path in ("/hi.pl", "/hi.psh", "/cgi-bin/hello.sh", "/cgi-bin/own_headers.sh"):
            response = yield self.get(path)
            self.assertEqual(response.status, 200, path)
            self.assertIsNone(response.header("Content-Encoding"), path)
            self.assertIsNone(response.header("Vary"), path)
            self.assertIsNone(response.header("Expires"), path)
            self.assertNotIn("max-age=300", response.header("Cache-Control") or "", path)
        self.assertEqual(response.header("Cache-Control"), "no-store")


class SingleProgramTests(TestCase):
    @defer.inlineCallbacks
    def test_a_prefix_mounted_on_one_program_gives_the_rest_as_path_info(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            ScriptAlias /app {CGI_BIN}/sub/deep.sh
        """,
        )
        for path, body in [
            ("/app", b"/app|\n"),
            ("/app/", b"/app|/\n"),
            ("/app/users/42", b"/app|/users/42\n"),
        ]:
            response = yield request(server.port, "GET", path)
            self.assertEqual(response.status, 200, path)
            self.assertEqual(response.body, body, path)
        response = yield request(server.port, "GET", "/application")
        self.assertEqual(response.status, 404)


class ConfigErrorTests(SynchronousTestCase):
    def load(self, text):
        return load_config(f"Plugin {plugin_name()}\n" + text)

    def test_unknown_handler_is_refused_with_its_line(self):
        e = self.assertRaises(ConfigErrors, self.load, "\nAddHandler php-script .php\n")
        self.assertIn(":3:", str(e))
        self.assertIn("unknown handler 'php-script'", str(e))

    def test_interpreter_must_be_an_executable_file(self):
        e = self.assertRaises(ConfigErrors, self.load, "\nCGIInterpreter /no/such/php-cgi .php\n")
        self.assertIn(":3:", str(e))
        self.assertIn("/no/such/php-cgi is not an executable file", str(e))
        e = self.assertRaises(ConfigErrors, self.load, "CGIInterpreter /bin/sh\n")
        self.assertIn("CGIInterpreter", str(e))

    def test_scriptalias_needs_a_url_path(self):
        e = self.assertRaises(ConfigErrors, self.load, "ScriptAlias cgi-bin /srv/cgi\n")
        self.assertIn("URL path", str(e))

    def test_scriptalias_not_allowed_in_location(self):
        e = self.assertRaises(
            ConfigErrors, self.load, "<Location /x>\nScriptAlias /y/ /srv/\n</Location>\n"
        )
        self.assertIn("not allowed", str(e))

    def test_bad_timeout(self):
        e = self.assertRaises(ConfigErrors, self.load, "CGITimeout soon\n")
        self.assertIn("duration", str(e))

    def test_values_merge_per_scope(self):
        config = self.load("""
            SetEnv A 1
            PassEnv HOME
            <Location /x>
                SetEnv B 2
                UnsetEnv A
                CGITimeout 5s
            </Location>
        """)
        conf = config.servers[0].resolve("/x/y").conf
        self.assertEqual(conf.set_env, {"A": "1", "B": "2"})
        self.assertEqual(conf.cgi_timeout, 5.0)
        self.assertEqual(config.servers[0].resolve("/").conf.cgi_timeout, 60.0)


class DropinTests(SynchronousTestCase):
    def test_registered_as_cgi_in_the_bundled_dropin(self):
        import importlib.util

        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        spec = importlib.util.spec_from_file_location(
            "axkit_bundled_under_test", os.path.join(here, "twisted", "plugins", "axkit_bundled.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.assertEqual(module.cgi.name, "cgi")
        from axkit.plugins.cgi import CGI

        self.assertIs(module.cgi.load(), CGI)


class PluginOrderTests(TestCase):
    """cgi declares run_before: listed after the file handlers, it still
    maps ScriptAlias first and runs AddHandler programs (never sends their
    source)."""

    @defer.inlineCallbacks
    def test_cgi_listed_after_the_file_handlers_still_runs_first(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        script = os.path.join(docroot, "doc.cgi")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nran'\n")
        os.chmod(script, 0o755)
        server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin uri_to_file
            Plugin serve_file
            Plugin {plugin_name()}
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            AddHandler cgi-script .cgi
            Options +ExecCGI
        """,
        )
        response = yield request(server.port, "GET", "/cgi-bin/hello.sh")
        self.assertEqual(response.status, 200)
        self.assertNotIn(b"#!/bin/sh", response.body)
        response = yield request(server.port, "GET", "/doc.cgi")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"ran")

    def test_run_before_moves_a_plugin_ahead_of_the_first_it_names(self):
        from axkit.config.scopes import order_plugins

        class P:
            def __init__(self, name, run_before=()):
                self.name, self.run_before = name, run_before

            def __repr__(self):
                return self.name

        a, b, c = P("a"), P("b"), P("c", run_before=("b", "x"))
        self.assertEqual([p.name for p in order_plugins([a, b, c])], ["a", "c", "b"])
        self.assertEqual([p.name for p in order_plugins([c, a, b])], ["c", "a", "b"])
        # Two plugins each wanting to run first: no loop, a stable answer.
        d, e = P("d", run_before=("e",)), P("e", run_before=("d",))
        self.assertEqual([p.name for p in order_plugins([d, e])], ["e", "d"])


class ReloadTests(TestCase):
    @defer.inlineCallbacks
    def test_reload_leaves_running_programs_alone(self):
        from axkit.cgi.slots import SLOTS

        from .cgi_support import wait_until

        docroot = self.mktemp()
        os.makedirs(docroot)
        text = f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            ScriptAlias /cgi-bin/ {CGI_BIN}/
        """
        server = yield serve(self, text)
        pending = request(server.port, "GET", "/cgi-bin/slow.sh")
        yield wait_until(lambda: SLOTS.running)
        reloaded = yield server.reload(text + "\nCGITimeout 30s\n")
        self.assertTrue(reloaded)
        response = yield pending
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"slow but sure\n")


class FilesSectionTests(TestCase):
    @defer.inlineCallbacks
    def test_files_sections_apply_to_scriptalias_programs(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            <Files *.py>
                SetEnv FROM_FILES_SECTION yes
            </Files>
        """,
        )
        import json

        response = yield request(server.port, "GET", "/cgi-bin/env.py")
        self.assertEqual(json.loads(response.body)["env"].get("FROM_FILES_SECTION"), "yes")
        response = yield request(server.port, "GET", "/cgi-bin/hello.sh")
        self.assertEqual(response.status, 200)


class WantsHookTests(SynchronousTestCase):
    def test_mime_map_is_taken_only_where_programs_are_mapped_by_extension(self):
        config = load_config(f"""
            Plugin {plugin_name()}
            ScriptAlias /cgi-bin/ /srv/cgi-bin/
            <Location /docs>
                AddHandler cgi-script .cgi
            </Location>
        """)
        server = config.servers[0]
        outer = server.resolve("/cgi-bin/x")
        inner = server.resolve("/docs/x.cgi")
        self.assertEqual(outer.chains["mime_map"], ())
        self.assertEqual(len(inner.chains["mime_map"]), 1)
        self.assertEqual(len(outer.chains["uri_translation"]), 1)
