"""A small case-insensitive multi-valued header map, kept in arrival order."""


class Headers:
    """Header fields: name lookup is case-insensitive; order is kept.

    Values are str (latin-1 decoded from the wire).
    """

    __slots__ = ("_items",)

    def __init__(self, items=None):
        self._items = list(items) if items else []   # [(name, value)]

    def get(self, name, default=None):
        """All values of ``name`` joined with ", " (RFC 9110 §5.3), or default."""
        lname = name.lower()
        found = None
        for k, v in self._items:
            if k.lower() == lname:
                found = v if found is None else f"{found}, {v}"
        return default if found is None else found

    def get_all(self, name):
        lname = name.lower()
        return [v for k, v in self._items if k.lower() == lname]

    def __contains__(self, name):
        lname = name.lower()
        for k, _ in self._items:
            if k.lower() == lname:
                return True
        return False

    def set(self, name, value):
        """Replace every ``name`` field with one field."""
        self.remove(name)
        self._items.append((name, value))

    def add(self, name, value):
        self._items.append((name, value))

    def setdefault(self, name, value):
        if name not in self:
            self._items.append((name, value))

    def remove(self, name):
        lname = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lname]

    def items(self):
        return list(self._items)

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"Headers({self._items!r})"
