"""Real-world CGI programs, run unchanged: a CGI.pm application, gitweb (the
Perl CGI shipped with git), git's smart-HTTP backend (git-http-backend, C)
driven by a real git clone and push, PHP through php-cgi, a C program
compiled here, and a program written against Python's cgi module."""

import os
import shutil
import subprocess

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from .cgi_support import base_config, plugin_name, request, serve

GITWEB = "/usr/share/gitweb/gitweb.cgi"
PHP_CGI = shutil.which("php-cgi")

PHP_PAGE = """<?php
header("X-Php: yes");
echo $_SERVER["REQUEST_METHOD"], " ", $_SERVER["SCRIPT_NAME"], " ",
     $_SERVER["PATH_INFO"] ?? "-", "\\n";
echo json_encode($_GET), json_encode($_POST), json_encode($_COOKIE), "\\n";
foreach ($_FILES as $k => $f) { echo $k, "=", $f["name"], ":", $f["size"], "\\n"; }
"""

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    const char *method = getenv("REQUEST_METHOD");
    const char *query = getenv("QUERY_STRING");
    const char *length = getenv("CONTENT_LENGTH");
    long n = length ? atol(length) : 0, got = 0;
    char buf[4096];
    while (got < n) {
        size_t want = n - got < (long)sizeof buf ? (size_t)(n - got) : sizeof buf;
        size_t r = fread(buf, 1, want, stdin);
        if (r == 0) break;
        got += r;
    }
    printf("Status: 201 Created\r\nContent-Type: text/plain\r\n\r\n");
    printf("method=%s query=%s read=%ld\n", method ? method : "-", query ? query : "-", got);
    return 0;
}
"""


def have_perl_module(name):
    return (
        subprocess.call(
            ["perl", f"-M{name}", "-e", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        == 0
    )


def git_env():
    return dict(
        os.environ,
        GIT_AUTHOR_NAME="T",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="T",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=os.getcwd(),
    )


def seed_repo(bare, readme, message):
    """A bare repository at ``bare`` with one commit of a README."""
    work = bare + ".seed"
    env = git_env()
    subprocess.check_call(["git", "init", "-q", work], env=env)
    with open(os.path.join(work, "README"), "w") as f:
        f.write(readme)
    subprocess.check_call(["git", "-C", work, "add", "README"], env=env)
    subprocess.check_call(["git", "-C", work, "commit", "-qm", message], env=env)
    subprocess.check_call(["git", "clone", "-q", "--bare", work, bare], env=env)
    shutil.rmtree(work)


class CGIpmTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        if not have_perl_module("CGI"):
            raise SkipTest("CGI.pm is not installed (Debian: libcgi-pm-perl)")
        docroot = self.mktemp()
        os.makedirs(docroot)
        self.server = yield serve(self, base_config(docroot))

    @defer.inlineCallbacks
    def test_get_with_query_and_path_info(self):
        response = yield request(
            self.server.port, "GET", "/cgi-bin/cgipm.pl/some/where?name=J%C3%BCrgen%20%3Cb%3E"
        )
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIn("seen=yes", response.header("Set-Cookie"))
        self.assertIn(b"<h1>Hello J\xc3\xbcrgen &lt;b&gt;</h1>", response.body)
        self.assertIn(b"method=GET path_info=/some/where", response.body)

    @defer.inlineCallbacks
    def test_urlencoded_post(self):
        response = yield request(
            self.server.port,
            "POST",
            "/cgi-bin/cgipm.pl",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"name=poster&other=1",
        )
        self.assertIn(b"<h1>Hello poster</h1>", response.body)
        self.assertIn(b"method=POST", response.body)

    @defer.inlineCallbacks
    def test_multipart_upload_chunked(self):
        content = b"line one\nline two\n" * 5000
        body = (
            b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nuploader\r\n'
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; '
            b'filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n'
            + content
            + b"\r\n--XyZ--\r\n"
        )
        chunked = (
            b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 7000]), body[i : i + 7000])
                for i in range(0, len(body), 7000)
            )
            + b"0\r\n\r\n"
        )
        response = yield request(
            self.server.port,
            "POST",
            "/cgi-bin/cgipm.pl",
            [
                ("Content-Type", "multipart/form-data; boundary=XyZ"),
                ("Transfer-Encoding", "chunked"),
            ],
            chunked,
        )
        self.assertEqual(response.status, 200)
        self.assertIn(b"<h1>Hello uploader</h1>", response.body)
        self.assertIn(b"upload=notes.txt size=%d lines=10000" % len(content), response.body)


class GitwebTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        if not os.path.exists(GITWEB) or shutil.which("git") is None:
            raise SkipTest("gitweb is not installed (Debian: git, /usr/share/gitweb)")
        if not have_perl_module("CGI"):
            raise SkipTest("CGI.pm is not installed")
        base = os.path.abspath(self.mktemp())
        repos = os.path.join(base, "repos")
        seed_repo(os.path.join(repos, "demo.git"), "hello from the repo\n", "first commit")
        conf = os.path.join(base, "gitweb.conf")
        with open(conf, "w") as f:
            f.write(f'our $projectroot = "{repos}";\nour $git_temp = "/tmp";\n')
        docroot = os.path.join(base, "htdocs")
        os.makedirs(docroot)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            ScriptAlias /git {GITWEB}
            SetEnv GITWEB_CONFIG {conf}
        """,
        )

    @defer.inlineCallbacks
    def test_project_list_commit_and_raw_blob(self):
        listing = yield request(self.server.port, "GET", "/git/")
        self.assertEqual(listing.status, 200)
        self.assertIn(b"demo.git", listing.body)
        commit = yield request(self.server.port, "GET", "/git/demo.git/commit/HEAD")
        self.assertEqual(commit.status, 200)
        self.assertIn(b"first commit", commit.body)
        blob = yield request(self.server.port, "GET", "/git/demo.git/blob_plain/HEAD:/README")
        self.assertEqual(blob.status, 200)
        self.assertEqual(blob.body, b"hello from the repo\n")
        missing = yield request(self.server.port, "GET", "/git/?p=nope.git;a=summary")
        self.assertEqual(missing.status, 404)


class CProgramTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SkipTest("no C compiler")
        self.bin = os.path.abspath(self.mktemp())
        os.makedirs(self.bin)
        source = os.path.join(self.bin, "prog.c")
        with open(source, "w") as f:
            f.write(C_PROGRAM)
        subprocess.check_call([cc, "-O2", "-o", os.path.join(self.bin, "prog.cgi"), source])
        docroot = self.mktemp()
        os.makedirs(docroot)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            ScriptAlias /c/ {self.bin}/
        """,
        )

    @defer.inlineCallbacks
    def test_compiled_program_reads_its_body_and_sets_status(self):
        response = yield request(self.server.port, "POST", "/c/prog.cgi?x=1", body=b"q" * 100000)
        self.assertEqual(response.status, 201)
        self.assertEqual(response.body, b"method=POST query=x=1 read=100000\n")


class PythonCgiModuleTests(TestCase):
    @defer.inlineCallbacks
    def test_fieldstorage_program(self):
        result = subprocess.run(
            ["python3", "-W", "ignore", "-c", "import cgi"], capture_output=True
        )
        if result.returncode != 0:
            raise SkipTest("this python3 has no cgi module")
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(self, base_config(docroot))
        response = yield request(
            server.port,
            "POST",
            "/cgi-bin/pycgi.py?a=1",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"b=two&c=%C3%A9",
        )
        self.assertEqual(response.status, 200)
        # FieldStorage merges the query string and the posted form.
        self.assertEqual(response.body, "a=1\nb=two\nc=é\n".encode())


class GitSmartHTTPTests(TestCase):
    """git-http-backend: what `git clone` and `git push` over HTTP run.  A
    push larger than http.postBuffer is sent as a chunked request body: the
    program only reads CONTENT_LENGTH bytes, so it must be de-chunked and
    counted first."""

    @defer.inlineCallbacks
    def setUp(self):
        git = shutil.which("git")
        if git is None:
            raise SkipTest("git is not installed")
        exec_path = subprocess.check_output([git, "--exec-path"], text=True).strip()
        backend = os.path.join(exec_path, "git-http-backend")
        if not os.access(backend, os.X_OK):
            raise SkipTest("git-http-backend is not installed")
        self.git = git
        self.base = base = os.path.abspath(self.mktemp())
        repos = os.path.join(base, "repos")
        self.bare = os.path.join(repos, "demo.git")
        seed_repo(self.bare, "seed\n", "seed")
        subprocess.check_call(
            [git, "-C", self.bare, "config", "http.receivepack", "true"], env=git_env()
        )
        docroot = os.path.join(base, "htdocs")
        os.makedirs(docroot)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            ScriptAlias /git {backend}
            SetEnv GIT_PROJECT_ROOT {repos}
            SetEnv GIT_HTTP_EXPORT_ALL 1
        """,
        )

    def run_git(self, *args):
        return getProcessOutputAndValue(self.git, args, env=git_env(), path=self.base)

    @defer.inlineCallbacks
    def test_clone_then_push_a_chunked_pack(self):
        url = f"http://127.0.0.1:{self.server.port}/git/demo.git"
        clone = os.path.join(self.base, "clone")
        out, err, code = yield self.run_git("clone", "-q", url, clone)
        self.assertEqual(code, 0, err)
        with open(os.path.join(clone, "README")) as f:
            self.assertEqual(f.read(), "seed\n")
        # 1 MiB of noise does not compress: the pack is far over the 64 KiB
        # postBuffer, so git sends it chunked.
        with open(os.path.join(clone, "noise.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        for args in (("-C", clone, "add", "noise.bin"), ("-C", clone, "commit", "-qm", "noise")):
            out, err, code = yield self.run_git(*args)
            self.assertEqual(code, 0, err)
        out, err, code = yield self.run_git(
            "-C", clone, "-c", "http.postBuffer=65536", "push", "-q", "origin", "HEAD"
        )
        self.assertEqual(code, 0, err)
        out, err, code = yield self.run_git("-C", self.bare, "log", "--format=%s")
        self.assertEqual(out.split(), [b"noise", b"seed"])


class PhpCgiTests(TestCase):
    """PHP through php-cgi, mapped by CGIInterpreter as lighttpd's cgi.assign
    maps it (php-cgi also needs REDIRECT_STATUS, which every program gets)."""

    @defer.inlineCallbacks
    def setUp(self):
        if PHP_CGI is None:
            raise SkipTest("php-cgi is not installed (Debian: php-cgi)")
        docroot = os.path.abspath(self.mktemp())
        os.makedirs(docroot)
        with open(os.path.join(docroot, "info.php"), "w") as f:
            f.write(PHP_PAGE)
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {docroot}
            Plugin {plugin_name()}
            Plugin uri_to_file
            Plugin serve_file
            CGIInterpreter {PHP_CGI} .php
            Options +ExecCGI
        """,
        )

    @defer.inlineCallbacks
    def test_get_with_path_info_query_and_cookies(self):
        response = yield request(
            self.server.port, "GET", "/info.php/more?a=1&b=x%20y", [("Cookie", "k=v; s=2")]
        )
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("X-Php"), "yes")
        self.assertEqual(
            response.body, b'GET /info.php /more\n{"a":"1","b":"x y"}[]{"k":"v","s":"2"}\n'
        )

    @defer.inlineCallbacks
    def test_multipart_upload(self):
        boundary = "b0undary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="f"; '
                f'filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + b"z" * 70000
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = yield request(
            self.server.port,
            "POST",
            "/info.php",
            [("Content-Type", f"multipart/form-data; boundary={boundary}")],
            body,
        )
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b'POST /info.php -\n[]{"x":"1"}[]\nf=a.bin:70000\n')

    @defer.inlineCallbacks
    def test_head_gets_no_false_length(self):
        # php-cgi writes no body for a HEAD: no Content-Length: 0 either.
        response = yield request(self.server.port, "HEAD", "/info.php")
        self.assertEqual(response.status, 200)
        self.assertIsNone(response.header("Content-Length"))
        self.assertEqual(response.body, b"")
