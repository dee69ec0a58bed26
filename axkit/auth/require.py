"""Apache 2.4's Require rules: parsing a rule or a <RequireAll>/<RequireAny>/
<RequireNone> section, and evaluating them as mod_authz_core does (each
result one of granted, denied, neutral, denied-no-user).  The facts a rule
looks at (the client's address, host name, user, groups) come from the
access plugin, which decides when each step runs."""

import ipaddress
import socket

from axkit.config import ConfigError

GRANTED, DENIED, NEUTRAL, NO_USER = "granted", "denied", "neutral", "denied-no-user"


def _network(word):
    """An address or network as Apache's mod_authz_host reads it: 10.1.2.3,
    10.1 (a partial address), 10.1.0.0/16, 10.1.0.0/255.255.0.0, 2001:db8::/32."""
    text = word
    if "/" not in text and ":" not in text and text.count(".") < 3:
        parts = [p for p in text.split(".") if p != ""]
        if parts and all(p.isdigit() for p in parts):
            text = ".".join(parts + ["0"] * (4 - len(parts))) + f"/{8 * len(parts)}"
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"ip address '{word}' appears to be invalid")


class Rule:
    """One ``Require [not] KIND ARGS...`` line."""

    KINDS = ("all", "ip", "host", "local", "valid-user", "user", "group", "method")

    def __init__(self, kind, args, negate, text):
        self.kind = kind
        self.args = args
        self.negate = negate
        self.text = text

    def __str__(self):
        return self.text

    __repr__ = __str__

    def check(self, facts):
        kind = self.kind
        if kind == "all":
            return GRANTED if self.args else DENIED
        if kind == "ip":
            address = facts.address()
            if address is None:
                return DENIED
            return (
                GRANTED
                if any(address.version == n.version and address in n for n in self.args)
                else DENIED
            )
        if kind == "local":
            address = facts.address()
            return GRANTED if address is not None and address.is_loopback else DENIED
        if kind == "method":
            return GRANTED if facts.method in self.args else DENIED
        if kind == "host":
            name = facts.hostname()
            if name is None:
                return DENIED
            return (
                GRANTED if any(name == d or name.endswith("." + d) for d in self.args) else DENIED
            )
        user = facts.user
        if user is None:
            return NO_USER
        if kind == "valid-user":
            return GRANTED
        if kind == "user":
            return GRANTED if user in self.args else DENIED
        # group
        return GRANTED if facts.groups() & self.args else DENIED


class Section:
    """<RequireAll>, <RequireAny> or <RequireNone>, and what it holds."""

    NAMES = {"all": "RequireAll", "any": "RequireAny", "none": "RequireNone"}

    def __init__(self, op, children):
        self.op = op
        self.children = tuple(children)
        self.negate = op == "none"

    def __str__(self):
        name = self.NAMES[self.op]
        return f"<{name}> " + "; ".join(str(c) for c in self.children) + f" </{name}>"

    __repr__ = __str__


def parse_rule(words):
    """A Rule from the words after ``Require``."""
    if not words:
        raise ConfigError(
            "Require needs a rule: all granted|all denied|ip ...|host ...|"
            "valid-user|user NAME...|group NAME..."
        )
    negate = words[0].lower() == "not"
    rest = list(words[1:] if negate else words)
    if not rest:
        raise ConfigError("Require not needs a rule")
    kind, args = rest[0].lower(), rest[1:]
    text = " ".join(words)
    if kind not in Rule.KINDS:
        raise ConfigError(
            f"Unknown Authz provider: {rest[0]} (known: " + ", ".join(Rule.KINDS) + ")"
        )
    if kind == "all":
        if len(args) != 1 or args[0].lower() not in ("granted", "denied"):
            raise ConfigError("Argument for 'Require all' must be 'granted' or 'denied'")
        value = args[0].lower() == "granted"
    elif kind in ("valid-user", "local"):
        if args:
            raise ConfigError(f"Require {kind} takes no arguments")
        value = None
    else:
        if not args:
            raise ConfigError(
                f"Require {kind} needs at least one "
                + {
                    "ip": "address or network",
                    "host": "host name",
                    "user": "user name",
                    "group": "group name",
                    "method": "method",
                }[kind]
            )
        if kind == "ip":
            value = tuple(_network(a) for a in args)
        elif kind == "host":
            value = tuple(a.lower().strip(".") for a in args)
        elif kind == "method":
            methods = {a.upper() for a in args}
            if "GET" in methods:
                methods.add("HEAD")  # as Apache: HEAD is a GET
            value = frozenset(methods)
        else:
            value = frozenset(a.encode("utf-8") for a in args)
    return Rule(kind, value, negate, text)


def _check_children(op, children, where):
    """Apache's rules for what a section may hold."""
    name = f"<{Section.NAMES[op]}>" if op in Section.NAMES else "<RequireAny>"
    if not children:
        raise ConfigError(f"{name} directive contains no authorization directives", *where)
    if op in ("any", "none"):
        for child, child_where in children:
            if child.negate:
                what = (
                    "negative Require directive"
                    if isinstance(child, Rule)
                    else "<RequireNone> directive"
                )
                raise ConfigError(f"{what} has no effect in {name} directive", *child_where)
    elif all(child.negate for child, _ in children):
        raise ConfigError(
            f"{name} directive contains only negative authorization directives", *where
        )


def parse_section(op, nodes, ctx):
    """A Section from the nodes between <RequireXxx> and </RequireXxx>."""
    children = []
    for node in nodes:
        where = (node.file, node.line)
        kind = getattr(node, "kind", None)
        if kind is None and node.name.lower() == "require":
            try:
                children.append((parse_rule(node.args), where))
            except ConfigError as e:
                raise e.located(*where)
        elif kind in ("requireall", "requireany", "requirenone"):
            if node.args:
                raise ConfigError(f"<{kind}> takes no arguments", *where)
            children.append((parse_section(kind[7:], node.children, ctx), where))
        else:
            label = f"<{kind}>" if kind else node.name
            raise ConfigError(
                f"{label} is not allowed in <{Section.NAMES[op]}> (only "
                f"Require lines and <RequireAll>/<RequireAny>/<RequireNone>)",
                *where,
            )
    _check_children(op, children, (ctx.file, ctx.line))
    return Section(op, [c for c, _ in children])


def evaluate(node, facts):
    """Apache's apply_authz_sections: GRANTED, DENIED, NEUTRAL or NO_USER."""
    if node.__class__ is Rule:
        result = node.check(facts)
    else:
        result = NEUTRAL
        conjunction = node.op == "all"
        for child in node.children:
            r = evaluate(child, facts)
            if r == NEUTRAL:
                continue
            if conjunction:
                if r == DENIED:
                    result = DENIED
                    break
                if (r == NO_USER and result != DENIED) or result == NEUTRAL:
                    result = r
            else:
                if r == GRANTED:
                    result = GRANTED
                    break
                if (r == NO_USER and result == DENIED) or result == NEUTRAL:
                    result = r
    if node.negate:
        # A negated denial is neutral: not being refused grants nothing.
        if result == GRANTED:
            return DENIED
        if result in (DENIED, NO_USER):
            return NEUTRAL
    return result


class NeedHost(Exception):
    """A host rule needs the client's name, not looked up yet."""


def client_ip(request):
    try:
        address = ipaddress.ip_address((request.client_address or "").split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def double_reverse(ip):
    """The host name of ``ip`` whose forward lookup gives ``ip`` back
    (Apache's REMOTE_DOUBLE_REV), lower-cased; None otherwise.  Blocking."""
    try:
        name = socket.gethostbyaddr(ip)[0]
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return None
    if ip not in {info[4][0].split("%")[0] for info in infos}:
        return None
    return name.lower().rstrip(".")
