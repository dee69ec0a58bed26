"""The plugins bundled with axkit, findable by name (imported lazily)."""

from axkit.dropin import AxKitPlugin

uri_to_file = AxKitPlugin(
    "uri_to_file",
    "axkit.plugins.uri_to_file.URIToFile",
    "Maps URLs to files under DocumentRoot (PATH_INFO, DirectoryIndex).",
)
mime_map = AxKitPlugin(
    "mime_map",
    "axkit.plugins.mime_map.MimeMap",
    "Sets the media type from the file extension (AddType).",
)
serve_file = AxKitPlugin(
    "serve_file", "axkit.plugins.serve_file.ServeFile", "Serves regular files for GET and HEAD."
)
serve_dir = AxKitPlugin(
    "serve_dir",
    "axkit.plugins.serve_dir.ServeDir",
    "Lists directories as HTML (DirectoryListing On).",
)
access_log = AxKitPlugin(
    "access_log",
    "axkit.plugins.access_log.AccessLog",
    "One line per response: common, combined, JSON lines or a custom LogFormat.",
)
error_log = AxKitPlugin(
    "error_log",
    "axkit.plugins.error_log.ErrorLog",
    "Writes log events at or above LogLevel to ErrorLog (stderr, stdout or a file).",
)
compress = AxKitPlugin(
    "compress",
    "axkit.plugins.compress.Compress",
    "Sends .br/.gz siblings or gzips on the fly (Gzip, Precompressed).",
)
expires = AxKitPlugin(
    "expires",
    "axkit.plugins.expires.Expires",
    "Adds Expires and Cache-Control max-age (ExpiresByType, ExpiresDefault).",
)
headers = AxKitPlugin(
    "headers",
    "axkit.plugins.headers.HeadersPlugin",
    "Sets, appends or removes response headers (Header set ...).",
)
cgi = AxKitPlugin(
    "cgi",
    "axkit.plugins.cgi.CGI",
    "Runs CGI/1.1 programs (ScriptAlias, AddHandler cgi-script, nph-).",
)
access = AxKitPlugin(
    "access",
    "axkit.plugins.access.Access",
    "Require (Apache 2.4: ip, host, user, group, ...) and Basic "
    "authentication from htpasswd files.",
)
alias = AxKitPlugin(
    "alias",
    "axkit.plugins.alias.Alias",
    "Alias, AliasMatch, Redirect, RedirectMatch (Apache's mod_alias).",
)
error_document = AxKitPlugin(
    "error_document",
    "axkit.plugins.error_document.ErrorDocument",
    "ErrorDocument: a page, text or redirect of one's own for an error status.",
)
wsgi = AxKitPlugin(
    "wsgi", "axkit.plugins.wsgi.WSGI", "Runs WSGI applications in a thread pool (WSGIScriptAlias)."
)
asgi = AxKitPlugin(
    "asgi",
    "axkit.plugins.asgi.ASGI",
    "Runs ASGI 3 applications in the server (ASGIAlias, ASGILifespan).",
)
proxy = AxKitPlugin(
    "proxy", "axkit.plugins.proxy.Proxy", "Reverse proxy to HTTP backends (ProxyPass, X-Sendfile)."
)
remoteip = AxKitPlugin(
    "remoteip",
    "axkit.plugins.remoteip.RemoteIP",
    "The client's address behind a front end (RemoteIPHeader, RemoteIPTrustedProxy).",
)
server_status = AxKitPlugin(
    "server_status",
    "axkit.plugins.server_status.ServerStatus",
    "Apache mod_status's page and ?auto form (ServerStatus On in a <Location>).",
)
metrics = AxKitPlugin(
    "metrics",
    "axkit.plugins.metrics.Metrics",
    "Prometheus metrics (Metrics On in a <Location>): requests, durations, connections, pools.",
)
xslt = AxKitPlugin("xslt", "axkit.plugins.xslt.Xslt", "Styles XML with XSLT (AxAddProcessor).")
