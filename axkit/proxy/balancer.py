"""<Proxy balancer://NAME>: members, a load-balancing method, passive health.

    <Proxy balancer://app>
        BalancerMember http://127.0.0.1:8001 loadfactor=2
        BalancerMember unix:/run/app2.sock|http://localhost/
        ProxySet lbmethod=bybusyness failures=1 retry=30
    </Proxy>
    ProxyPass /app/ balancer://app/

byrequests (the default) spreads requests in proportion to each member's
loadfactor; bybusyness picks the member with the fewest requests in
flight.  Passive health as Apache's worker "error state": a member that
failed ``failures`` times in a row (refused, cut before an answer, no
answer in time) is skipped for ``retry`` seconds, then tried again; with
every member skipped the request is answered 503 at once.  The counters
live with the loaded config (a reload starts them afresh).
"""

from axkit.config import ConfigError

from .backend import Backend, parse_keys

MEMBER_KEYS = ("loadfactor", "max", "ttl", "timeout", "retry")
SET_KEYS = ("lbmethod", "failures", "retry", "timeout")


class Member:
    __slots__ = (
        "backend",
        "loadfactor",
        "max",
        "timeout",
        "retry",
        "served",
        "busy",
        "fails",
        "down_until",
        "ttl",
        "where",
        "spec",
    )

    def __init__(self, url, keys, where=None):
        self.backend = Backend(url)
        self.where = where
        self.spec = None  # its PoolSpec, once the config is read (check_config)
        self.loadfactor = keys.get("loadfactor", 1)
        self.max = keys.get("max")
        self.ttl = keys.get("ttl")
        self.timeout = keys.get("timeout")
        self.retry = keys.get("retry")
        self.served = 0
        self.busy = 0
        self.fails = 0
        self.down_until = 0.0

    def __repr__(self):
        return f"BalancerMember {self.backend}"


class Balancer:
    def __init__(self, name):
        self.name = name
        self.members = []
        self.lbmethod = "byrequests"
        self.failures = 1
        self.retry = 60.0
        self.timeout = None

    def __repr__(self):
        return f"<Proxy balancer://{self.name}> ({len(self.members)} members)"

    def pick(self, now, exclude=()):
        """The member to send to next, or None when every one is down."""
        usable = [m for m in self.members if m.down_until <= now and m not in exclude]
        if not usable:
            return None
        if self.lbmethod == "bybusyness":
            return min(usable, key=lambda m: (m.busy / m.loadfactor, m.served / m.loadfactor))
        return min(usable, key=lambda m: m.served / m.loadfactor)

    def started(self, member):
        member.served += 1
        member.busy += 1

    def ended(self, member):
        member.busy -= 1

    def succeeded(self, member):
        member.fails = 0

    def failed(self, member, now):
        member.fails += 1
        if member.fails >= self.failures:
            retry = member.retry if member.retry is not None else self.retry
            member.down_until = now + retry
            member.fails = 0


def parse_balancer(url, nodes, ctx):
    """The value of one <Proxy balancer://NAME> section."""
    if not url.lower().startswith("balancer://") or not url[11:].strip("/"):
        raise ConfigError(f"<Proxy> takes balancer://NAME, got {url!r}")
    balancer = Balancer(url[11:].strip("/").lower())
    for node in nodes:
        where = (node.file, node.line)
        name = getattr(node, "name", None) or f"<{node.kind}>"
        try:
            if name.lower() == "balancermember":
                if not node.args:
                    raise ConfigError("BalancerMember takes URL [key=value...]")
                keys = parse_keys(node.args[1:], MEMBER_KEYS)
                balancer.members.append(Member(node.args[0], keys, where))
            elif name.lower() == "proxyset":
                keys = parse_keys(node.args, SET_KEYS)
                method = keys.get("lbmethod", balancer.lbmethod)
                if method not in ("byrequests", "bybusyness"):
                    raise ConfigError(f"lbmethod= takes byrequests or bybusyness, got {method!r}")
                balancer.lbmethod = method
                if "failures" in keys:
                    if not keys["failures"].isdigit() or int(keys["failures"]) < 1:
                        raise ConfigError("failures= takes a positive number")
                    balancer.failures = int(keys["failures"])
                if "retry" in keys:
                    balancer.retry = keys["retry"]
                balancer.timeout = keys.get("timeout", balancer.timeout)
            else:
                raise ConfigError(
                    f"{name} is not allowed in <Proxy> (only BalancerMember and ProxySet)"
                )
        except ConfigError as e:
            raise e.located(*where) from None
    if not balancer.members:
        raise ConfigError(f"<Proxy balancer://{balancer.name}> has no BalancerMember")
    return balancer
