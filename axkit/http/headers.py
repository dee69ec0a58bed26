"""A small case-insensitive multi-valued header map, kept in arrival order,
and the field rules every handler shares."""

import re

# Hop-by-hop fields (RFC 9110 §7.6.1): about one connection, never passed
# between a client and what produces the answer (a program, an
# application, a backend), whatever that one says.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
# A field name (RFC 9110 §5.1: a token) and a value character a handler may
# not send (controls but HTAB).
FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
BAD_FIELD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Headers:
    """Header fields: name lookup is case-insensitive; order is kept.

    Values are str (latin-1 decoded from the wire).
    """

    __slots__ = ("_items", "_lowered", "_index")

    def __init__(self, items=None, lowered=False):
        self._items = list(items) if items else []  # [(name, value)]
        # Request headers are stored with lower-case names: lookups then
        # compare names as they are.
        self._lowered = lowered
        # Lower-cased names: {name: value}, made at the first lookup when no
        # name repeats (False when one does); None until then or after a change.
        self._index = None

    def _lookup_index(self):
        index = self._index
        if index is None:
            index = dict(self._items)
            if len(index) != len(self._items):
                index = False  # a repeated name: lookups scan
            self._index = index
        return index

    def fields_by_name(self):
        """The fields as a dict {lower-case name: value} when the names are
        lower-case and none repeats (request headers, usually), else None
        (then use get).  Made once and kept until a change; read only."""
        if not self._lowered:
            return None
        index = self._index
        if index is None:
            index = self._lookup_index()
        return index if index is not False else None

    def get(self, name, default=None):
        """All values of ``name`` joined with ", " (RFC 9110 §5.3), or default."""
        lname = name.lower()
        found = None
        if self._lowered:
            index = self._index
            if index is None:
                index = self._lookup_index()
            if index is not False:
                return index.get(lname, default)
            for k, v in self._items:
                if k == lname:
                    found = v if found is None else f"{found}, {v}"
        else:
            for k, v in self._items:
                if k.lower() == lname:
                    found = v if found is None else f"{found}, {v}"
        return default if found is None else found

    def get_all(self, name):
        lname = name.lower()
        if self._lowered:
            return [v for k, v in self._items if k == lname]
        return [v for k, v in self._items if k.lower() == lname]

    def __contains__(self, name):
        lname = name.lower()
        if self._lowered:
            index = self._index
            if index is None:
                index = self._lookup_index()
            if index is not False:
                return lname in index
            for k, _ in self._items:
                if k == lname:
                    return True
            return False
        for k, _ in self._items:
            if k.lower() == lname:
                return True
        return False

    def set(self, name, value):
        """Replace every ``name`` field with one field."""
        self._index = None
        self.remove(name)
        self._items.append((name.lower() if self._lowered else name, value))

    def add(self, name, value):
        self._index = None
        self._items.append((name.lower() if self._lowered else name, value))

    def extend(self, items):
        """Add every (name, value) of ``items``, in order."""
        self._index = None
        if self._lowered:
            self._items.extend((name.lower(), value) for name, value in items)
        else:
            self._items.extend(items)

    def add_missing(self, items, names=None):
        """Add each (name, value) of ``items`` whose name is not set yet
        (in one step when nothing is set: the common case of a handler's
        own fields).  ``names``, when given, holds the items' names in lower
        case: then a few fields already set (a Vary) are checked against it
        at once instead of field by field."""
        if not self._items and not self._lowered:
            self._items.extend(items)
            return
        self._index = None
        if names is not None and not self._lowered:
            for k, _ in self._items:
                if k.lower() in names:
                    break
            else:
                self._items.extend(items)
                return
        present = {k.lower() for k, _ in self._items}
        append = self._items.append
        lowered = self._lowered
        for name, value in items:
            if name.lower() not in present:
                append((name.lower() if lowered else name, value))

    def setdefault(self, name, value):
        if name not in self:
            self.add(name, value)

    def remove(self, name):
        lname = name.lower()
        items = self._items
        # Most removals (every set()) find nothing: look before rebuilding.
        if self._lowered:
            for k, _ in items:
                if k == lname:
                    break
            else:
                return
        else:
            for k, _ in items:
                if k.lower() == lname:
                    break
            else:
                return
        self._index = None
        self._items = [(k, v) for k, v in items if k.lower() != lname]

    def items(self):
        return list(self._items)

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"Headers({self._items!r})"


def normalise_host(host):
    """A Host value as vhosts compare it: 'Example.COM.:8080' -> 'example.com';
    '[::1]:80' -> '[::1]'."""
    host = host.strip()
    if host.startswith("["):
        return host[: host.find("]") + 1].lower()
    if ":" in host:
        host = host.rpartition(":")[0]
    return host.rstrip(".").lower()
