"""The xslt plugin's configuration values: processors, named styles, and
choosing a style for a request (AxKit 1's style choosers)."""

import os
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from axkit.config import ConfigError

from .safety import url_to_path

PROCESSOR_TYPES = ("text/xsl", "application/xslt+xml")
DEFAULT = "#default"  # AxKit 1's name for the style outside any <AxStyleName>


class Processor:
    """One ``AxAddProcessor TYPE HREF``: a /href is under DocumentRoot,
    a file:///href is that file, any other is relative to the config
    file's folder."""

    __slots__ = ("href", "base_dir")

    def __init__(self, href, base_dir):
        self.href = href
        self.base_dir = base_dir

    def path(self, document_root):
        if self.href.startswith("file:"):
            return url_to_path(self.href) or self.href  # file:///usr/share/...
        if self.href.startswith("/"):
            return os.path.normpath(document_root + self.href)
        return os.path.normpath(os.path.join(self.base_dir, self.href))


class Style:
    """A ``<AxStyleName NAME>`` section: the processors it holds."""

    __slots__ = ("name", "processors")

    def __init__(self, name, processors):
        self.name = name
        self.processors = processors


def processor_type(word, ctx):
    if word.lower() not in PROCESSOR_TYPES:
        raise ConfigError(f"only text/xsl processors are available, got {word!r}")
    return word.lower()


processor_type.label = "text/xsl"


def href(word, ctx):
    return Processor(word, ctx.base_dir)


href.label = "PATH"


def style_section(value, nodes, ctx):
    """The value of <AxStyleName NAME>: its AxAddProcessor lines."""
    processors = []
    for node in nodes:
        where = (node.file, node.line)
        if getattr(node, "kind", None) is not None or node.name.lower() != "axaddprocessor":
            label = f"<{node.kind}>" if getattr(node, "kind", None) else node.name
            raise ConfigError(
                f"{label} is not allowed in <AxStyleName> (only AxAddProcessor lines)", *where
            )
        if len(node.args) != 2:
            raise ConfigError(
                "AxAddProcessor takes 2 arguments (usage: AxAddProcessor text/xsl PATH)", *where
            )
        try:
            processor_type(node.args[0], ctx)
        except ConfigError as e:
            raise e.located(*where)
        processors.append(
            Processor(
                node.args[1],
                os.path.dirname(os.path.abspath(node.file))
                if not node.file.startswith("<")
                else ctx.base_dir,
            )
        )
    name = value[0] if isinstance(value, tuple) else value
    return Style(name, tuple(processors))


def styles_of(items):
    """{style name: [Processor]} from the scope's AxAddProcessor list."""
    styles = {DEFAULT: []}
    for item in items:
        if isinstance(item, Style):
            styles.setdefault(item.name, []).extend(item.processors)
        else:
            styles[DEFAULT].append(item[1])
    return styles


class Chains:
    """A scope's styles as tuples of stylesheet file names, its
    ErrorStylesheet's, and its DocumentRoot's real path (document()'s
    confinement): worked out once per scope, not per request."""

    __slots__ = ("styles", "real_root", "error_stylesheet")

    def __init__(self, conf):
        root = conf.document_root
        self.styles = {
            name: tuple(p.path(root) for p in processors) or None
            for name, processors in styles_of(conf.ax_add_processor).items()
        }
        self.real_root = os.path.realpath(root)
        error = conf.error_stylesheet
        self.error_stylesheet = error.path(root) if error is not None else None

    def chain(self, style):
        """(style, its stylesheets or None: the document's own instructions);
        a name no <AxStyleName> defines gets the default style."""
        if style is not None:
            chain = self.styles.get(style, self)
            if chain is not self:
                return style, chain
        return DEFAULT, self.styles[DEFAULT]


def chosen_style(request, chooser):
    """The style name the request asks for (None: the default), and
    whether the path_info was the choice (then it is consumed)."""
    if chooser == "querystring":
        if request.query:
            for name, value in parse_qsl(request.query, keep_blank_values=True):
                if name == "style":
                    return value, False
    elif chooser == "cookie":
        for header in request.headers.get_all("cookie"):
            try:
                jar = SimpleCookie(header)
            except CookieError:
                continue
            if "axkit_style" in jar:
                return jar["axkit_style"].value, False
    elif chooser == "pathinfo":
        info = request.path_info
        if info and info != "/":
            return info.strip("/"), True
    return None, False


def query_params(query):
    """The query's name=value pairs usable as XSLT parameter names."""
    out = []
    if not query:
        return out
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name and name.replace("-", "_").replace(".", "_").isidentifier():
            out.append((name, value))
    return out
