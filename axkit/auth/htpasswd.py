"""htpasswd and group files as Apache's tools write them.

Password hashes (what ``htpasswd -B/-m/-s`` writes): bcrypt (``$2y$``,
``$2a$``, ``$2b$``, through the ``bcrypt`` package), ``$apr1$`` (MD5-crypt)
and ``{SHA}`` (unsalted SHA-1).  Others (``crypt(3)`` DES, ``$5$``/``$6$``
SHA-crypt, plain text) are refused as unsupported.  Comparisons are in
constant time.  Names and passwords are bytes: Apache compares bytes, and a
client's credentials need not be UTF-8.

A file is read again when it changes: its stat (inode, size, mtime) is
looked at, at most once a second.
"""

import base64
import hashlib
import hmac
import os
import time

CHECK_EVERY = 1.0  # seconds between two stats of a file
BCRYPT_PREFIXES = (b"$2y$", b"$2a$", b"$2b$")
BCRYPT_MAX = 72  # bcrypt looks at no more bytes (crypt_blowfish, APR)


class Unavailable(Exception):
    """The file could not be read (missing, unreadable)."""


class Unsupported(Exception):
    """A hash this module cannot check."""


def is_slow(hashed):
    """Whether checking against ``hashed`` is slow work (bcrypt): not for
    the reactor thread."""
    return hashed[:4] in BCRYPT_PREFIXES


def verify(password, hashed):
    """Whether ``password`` (bytes) matches the htpasswd hash ``hashed``
    (bytes).  Raises Unsupported for a hash kind it does not know.  bcrypt
    takes ~2^cost ms: call it off the reactor thread (is_slow)."""
    if hashed[:4] in BCRYPT_PREFIXES:
        import bcrypt

        try:
            return bcrypt.checkpw(password[:BCRYPT_MAX], hashed)
        except ValueError:
            raise Unsupported("malformed bcrypt hash")
    if hashed.startswith(b"$apr1$"):
        from .apr1 import apr1, salt_of

        return hmac.compare_digest(apr1(password, salt_of(hashed)), hashed)
    if hashed.startswith(b"{SHA}"):
        digest = b"{SHA}" + base64.b64encode(hashlib.sha1(password).digest())
        return hmac.compare_digest(digest, hashed)
    kind = (
        hashed.split(b"$")[1][:8].decode("ascii", "replace")
        if hashed.startswith(b"$") and hashed.count(b"$") >= 2
        else "crypt or plain text"
    )
    raise Unsupported(f"unsupported password hash ({kind}); use htpasswd -B")


class WatchedFile:
    """A file parsed into a value, parsed again when it changes on disk."""

    def __init__(self, path, parse):
        self.path = path
        self.parse = parse
        self.value = None
        self.identity = None
        self.checked = float("-inf")
        self.error = None

    def get(self):
        now = time.monotonic()
        if now - self.checked >= CHECK_EVERY:
            self.checked = now
            try:
                st = os.stat(self.path)
                identity = (st.st_ino, st.st_size, st.st_mtime_ns)
                if identity != self.identity:
                    with open(self.path, "rb") as f:
                        data = f.read()
                    self.value = self.parse(data)
                    self.identity = identity
                self.error = None
            except OSError as e:
                self.value, self.identity = None, None
                self.error = f"{self.path}: {e.strerror}"
        if self.error is not None:
            raise Unavailable(self.error)
        return self.value


def _lines(data):
    for raw in data.splitlines():
        line = raw.strip()
        if line and not line.startswith(b"#"):
            yield line


def parse_passwords(data):
    """user -> hash (bytes -> bytes); the first line for a user wins, as in
    Apache's mod_authn_file."""
    users = {}
    for line in _lines(data):
        user, sep, hashed = line.partition(b":")
        if sep and user not in users:
            users[user] = hashed.strip()
    return users


def parse_groups(data):
    """user -> frozenset of groups, from ``group: user user ...`` lines (a
    group may have several lines)."""
    members = {}
    for line in _lines(data):
        group, sep, names = line.partition(b":")
        if not sep:
            continue
        group = group.strip()
        for name in names.split():
            members.setdefault(name, set()).add(group)
    return {user: frozenset(groups) for user, groups in members.items()}


_files = {}


def watched(path, parse):
    """The shared WatchedFile for ``path`` (one per path and parser)."""
    key = (path, parse)
    f = _files.get(key)
    if f is None:
        if len(_files) > 1000:
            _files.clear()
        f = _files[key] = WatchedFile(path, parse)
    return f


def password_file(path):
    return watched(path, parse_passwords)


def group_file(path):
    return watched(path, parse_groups)


class VerifiedCache:
    """Recent successful checks, so a browser sending the same credentials
    with every request does not cost a bcrypt each time.  Holds a keyed
    digest of the password (a per-process random key), never the password;
    the stored hash is part of the key, so a changed password misses."""

    def __init__(self, ttl=60.0, size=1024):
        self.ttl = ttl
        self.size = size
        self.key = os.urandom(32)
        self.entries = {}

    def _digest(self, password):
        return hmac.new(self.key, password, hashlib.sha256).digest()

    def hit(self, path, user, hashed, password):
        entry = self.entries.get((path, user, hashed))
        if entry is None:
            return False
        digest, until = entry
        if until < time.monotonic():
            del self.entries[(path, user, hashed)]
            return False
        return hmac.compare_digest(digest, self._digest(password))

    def add(self, path, user, hashed, password):
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[(path, user, hashed)] = (self._digest(password), time.monotonic() + self.ttl)
