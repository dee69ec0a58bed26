"""A real nginx with proxy_cache in front of axkit: it caches what the cache
headers allow, then revalidates with a conditional request that axkit
answers 304.  Skipped when no nginx binary is installed."""

import os
import shutil
import subprocess
import tempfile

from twisted.internet import defer, reactor, task

from axkit.hooks import DECLINED
from axkit.testing import free_port

from .rawclient import port_open
from .static_support import StaticTestCase

NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache keys_zone=static:1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_cache static;
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


class Recorder:
    """Remembers what reached axkit (status and conditional fields)."""

    name = "recorder"
    directives = []
    seen = []

    def hook_response_sent(self, request, conf):
        Recorder.seen.append(
            (
                request.path,
                request.status,
                request.headers.get("if-none-match"),
                request.headers.get("if-modified-since"),
            )
        )
        return DECLINED


class NginxFrontTests(StaticTestCase):
    extra_config = """
        Plugin tests.test_static_nginx.Recorder
        Plugin headers
        Header set Cache-Control "public, max-age=1"
    """

    @defer.inlineCallbacks
    def setUp(self):
        nginx = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
        )
        if nginx is None:
            raise self.skipTest("nginx is not installed")
        self.make_root()
        self.write("style.css", "body { color: red }\n" * 50)
        Recorder.seen = []
        yield self.start()
        work = tempfile.mkdtemp(prefix="axkit-nginx-")
        self.addCleanup(shutil.rmtree, work, True)
        os.chmod(work, 0o777)  # nginx workers may run as another user
        self.port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=work, port=self.port, upstream=self.server.port))
        self.nginx = subprocess.Popen(
            [nginx, "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.addCleanup(self._stop_nginx)
        for _ in range(100):
            if self.nginx.poll() is not None:
                self.fail("nginx did not start: " + self.nginx.stderr.read().decode())
            if port_open(self.port, 0.2):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)

    def _stop_nginx(self):
        self.nginx.terminate()
        self.nginx.wait(10)

    @defer.inlineCallbacks
    def via_nginx(self, path):
        from axkit.testing import parse_responses

        from .rawclient import exchange, request_bytes

        data = yield exchange(self.port, request_bytes(path))
        return parse_responses(data)[0]

    @defer.inlineCallbacks
    def test_cached_then_revalidated_with_304(self):
        body = ("body { color: red }\n" * 50).encode()
        r = yield self.via_nginx("/style.css")
        self.assertEqual((r.status, r.header("X-Cache-Status")), (200, "MISS"))
        self.assertEqual(r.body, body)
        r = yield self.via_nginx("/style.css")
        self.assertEqual((r.status, r.header("X-Cache-Status")), (200, "HIT"))
        self.assertEqual(len(Recorder.seen), 1)  # served from nginx's cache
        # Let max-age=1 run out: nginx asks axkit again, conditionally.
        yield task.deferLater(reactor, 2.1, lambda: None)
        r = yield self.via_nginx("/style.css")
        self.assertEqual((r.status, r.header("X-Cache-Status")), (200, "REVALIDATED"))
        self.assertEqual(r.body, body)
        self.assertEqual(len(Recorder.seen), 2)
        path, status, inm, ims = Recorder.seen[1]
        self.assertEqual(status, 304)
        self.assertTrue(inm or ims)
