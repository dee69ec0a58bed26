"""Content-coding negotiation (RFC 9110 §12.5.3), shared by whatever
compresses a response: the compress plugin for files, the xslt plugin
for transformed pages.  Pure functions of header values; no plugin."""


def accepted_codings(value):
    """The content-codings a client accepts (q > 0), lower-case, each with its
    q-value (a dict); '*' gives gzip and br the q it names."""
    codings = {}
    refused = set()
    for item in value.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # nan, inf, negative: not a qvalue
                    q = 0.0
        if name == "x-gzip":
            name = "gzip"
        if q > 0:
            codings[name] = max(q, codings.get(name, 0.0))
        else:
            refused.add(name)
    star = codings.get("*")
    if star is not None:
        for name in ("gzip", "br"):
            if name not in codings and name not in refused:
                codings[name] = star
    for name in refused:
        codings.pop(name, None)
    return codings


def type_matches(media_type, patterns):
    """True when ``media_type`` (parameters ignored) is in ``patterns``
    (lower-case types and ``type/*`` wildcards)."""
    base = media_type.partition(";")[0].strip().lower()
    major = base.partition("/")[0] + "/*"
    return base in patterns or major in patterns


def add_vary(headers, token):
    """Add ``token`` to the response's Vary field unless it is there."""
    if not len(headers):
        headers.add("Vary", token)  # the usual case: nothing set yet
        return
    vary = headers.get("Vary")
    if vary is None:
        headers.set("Vary", token)
    elif token.lower() not in (v.strip().lower() for v in vary.split(",")):
        headers.set("Vary", f"{vary}, {token}")
