"""Apache's ``$apr1$`` password hash (htpasswd -m): MD5-crypt.

The algorithm is Poul-Henning Kamp's FreeBSD md5crypt with the magic
``$apr1$`` instead of ``$1$`` (APR's apr_md5_encode).  It is weak by
today's standards (1000 MD5 rounds) but it was htpasswd's default for two
decades, so existing files are full of it.
"""

from hashlib import md5

MAGIC = b"$apr1$"
_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value, count):
    out = bytearray()
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)


def apr1(password, salt, magic=MAGIC):
    """The full hash string (bytes) of ``password`` (bytes) with ``salt``
    (bytes; at most 8 are used, up to a ``$``)."""
    salt = salt.split(b"$", 1)[0][:8]
    final = md5(password + salt + password).digest()
    ctx = bytearray(password + magic + salt)
    length = len(password)
    while length > 0:
        ctx += final[: min(16, length)]
        length -= 16
    # Then, for each bit of the length, a NUL or the password's first byte
    # (the original adds final[0] after zeroing final: a NUL).
    length = len(password)
    while length:
        ctx += b"\0" if length & 1 else password[:1]
        length >>= 1
    final = md5(ctx).digest()
    for i in range(1000):
        step = password if i & 1 else final
        if i % 3:
            step += salt
        if i % 7:
            step += password
        step += final if i & 1 else password
        final = md5(step).digest()
    f = final
    encoded = (
        _to64((f[0] << 16) | (f[6] << 8) | f[12], 4)
        + _to64((f[1] << 16) | (f[7] << 8) | f[13], 4)
        + _to64((f[2] << 16) | (f[8] << 8) | f[14], 4)
        + _to64((f[3] << 16) | (f[9] << 8) | f[15], 4)
        + _to64((f[4] << 16) | (f[10] << 8) | f[5], 4)
        + _to64(f[11], 2)
    )
    return magic + salt + b"$" + encoded


def salt_of(hashed):
    """The salt of a ``$apr1$SALT$HASH`` string (bytes)."""
    return hashed[len(MAGIC) :].split(b"$", 1)[0]
