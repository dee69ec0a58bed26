"""The config language: lexing, sections, Include, and file:line errors."""

import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.errors import ConfigError, ConfigErrors
from axkit.config.lexer import lex
from axkit.config.loader import load_file


def write(folder, name, text):
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def shown(folder, name):
    """How the loader names a file in messages (relative when under cwd)."""
    path = os.path.normpath(os.path.join(folder, name))
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


class LexerTests(SynchronousTestCase):
    def test_words_quotes_comments_and_continuation(self):
        lines = lex(
            '# a comment\nAddType "text/plain" .txt  # trailing\n'
            'SetThing \'a b\' "c \\" d"\nLong one \\\n  two\n',
            "f.conf",
        )
        self.assertEqual(
            [line.words for line in lines],
            [
                ["AddType", "text/plain", ".txt"],
                ["SetThing", "a b", 'c " d'],
                ["Long", "one", "two"],
            ],
        )
        self.assertEqual([line.line for line in lines], [2, 3, 4])

    def test_unterminated_quote_is_an_error_with_its_line(self):
        with self.assertRaises(ConfigError) as cm:
            lex('Listen 8080\nDocumentRoot "unclosed\n', "f.conf")
        self.assertEqual(str(cm.exception), 'f.conf:2: unterminated " quote')


class LoaderTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.site = shown(self.dir, "site.conf")

    def load(self, text, name="site.conf"):
        return load_file(write(self.dir, name, text))

    def errors(self, text, name="site.conf"):
        with self.assertRaises(ConfigErrors) as cm:
            self.load(text, name)
        return [str(e) for e in cm.exception.errors]

    def test_a_good_config_loads_with_sections_and_case_insensitive_names(self):
        os.mkdir(os.path.join(self.dir, "htdocs"))
        config = self.load(
            "listen tcp:0:interface=127.0.0.1\n"
            "documentroot htdocs\n"
            "Plugin uri_to_file\n"
            "<Location /docs>\n"
            "  DirectoryIndex README.txt\n"
            "</Location>\n"
        )
        server = config.servers[0]
        self.assertEqual(server.listens, ("tcp:0:interface=127.0.0.1",))
        self.assertEqual(server.base.conf.document_root, os.path.join(self.dir, "htdocs"))
        self.assertEqual(server.resolve("/docs/x").conf.directory_index, ("README.txt",))
        self.assertEqual(server.resolve("/").conf.directory_index, ("index.html",))

    def test_location_matches_on_segment_boundaries(self):
        config = self.load("Plugin uri_to_file\n<Location /docs>\nDirectoryIndex a\n</Location>\n")
        server = config.servers[0]
        self.assertEqual(server.resolve("/docs").conf.directory_index, ("a",))
        self.assertEqual(server.resolve("/docs/").conf.directory_index, ("a",))
        self.assertEqual(server.resolve("/docs/x/y").conf.directory_index, ("a",))
        self.assertEqual(server.resolve("/docsx").conf.directory_index, ("index.html",))

    def test_unknown_directive_suggests_the_close_one(self):
        self.assertEqual(
            self.errors("Listen 8080\n\nDocumentRot /srv\n"),
            [f'{self.site}:3: unknown directive "DocumentRot" (did you mean "DocumentRoot"?)'],
        )

    def test_directive_of_a_plugin_not_loaded_names_the_plugin(self):
        self.assertEqual(
            self.errors("DirectoryIndex index.html\n"),
            [
                f"{self.site}:1: directive 'DirectoryIndex' belongs to plugin "
                "'uri_to_file', which is not loaded (add: Plugin uri_to_file)"
            ],
        )

    def test_every_error_is_reported_in_file_order(self):
        errors = self.errors(
            "Listen bogus:1\nPlugin no_such_plugin\nDocumentRoot a b\n"
            "<Location nope>\n</Location>\n"
        )
        self.assertEqual(len(errors), 4)
        self.assertTrue(errors[0].startswith(f"{self.site}:1: bad listening endpoint 'bogus:1'"))
        self.assertTrue(errors[1].startswith(f"{self.site}:2: unknown plugin 'no_such_plugin'"))
        self.assertEqual(
            errors[2],
            f"{self.site}:3: DocumentRoot takes 1 argument, got 2 (usage: DocumentRoot PATH)",
        )
        self.assertEqual(
            errors[3], f"{self.site}:4: <Location> path must start with '/', got 'nope'"
        )

    def test_unclosed_and_mismatched_sections(self):
        self.assertEqual(
            self.errors("<Location /a>\n</Server>\n"),
            [
                f"{self.site}:1: <Location> is never closed",
                f"{self.site}:2: </Server> closes <Location> opened at line 1",
            ],
        )

    def test_wrong_scope_is_refused(self):
        self.assertEqual(
            self.errors("<Location /a>\nListen 8080\n</Location>\n"),
            [
                f"{self.site}:2: Listen is not allowed in <Location>/<LocationMatch> "
                "(allowed in: the global scope (outside any section), <Server>)"
            ],
        )

    def test_include_with_glob_relative_to_the_including_file(self):
        write(self.dir, "conf.d/a.conf", "Plugin mime_map\nAddType text/x-a .aaa\n")
        write(self.dir, "conf.d/b.conf", "AddType text/x-b .bbb\n")
        config = self.load("Include conf.d/*.conf\n")
        types = config.servers[0].base.conf.add_type
        self.assertEqual((types["aaa"], types["bbb"]), ("text/x-a", "text/x-b"))

    def test_errors_in_included_files_name_that_file(self):
        write(self.dir, "conf.d/bad.conf", "\n\nNoSuchThing 1\n")
        self.assertEqual(
            self.errors("Include conf.d/*.conf\n"),
            [shown(self.dir, "conf.d/bad.conf") + ':3: unknown directive "NoSuchThing"'],
        )

    def test_missing_literal_include_is_an_error(self):
        self.assertEqual(
            self.errors("Include nothere.conf\n"),
            [f"{self.site}:1: Include nothere.conf: No such file or directory"],
        )

    def test_repeating_a_single_valued_directive_in_one_scope_is_refused(self):
        self.assertEqual(
            self.errors("DocumentRoot a\nDocumentRoot b\n"),
            [f"{self.site}:2: DocumentRoot is given twice in this scope (first at {self.site}:1)"],
        )

    def test_the_repository_site_conf_loads(self):
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        config = load_file(os.path.join(repo, "site.conf"))
        conf = config.servers[0].base.conf
        self.assertEqual(conf.document_root, os.path.join(repo, "site", "htdocs"))
        self.assertEqual(conf.add_type["png"], "image/png")
