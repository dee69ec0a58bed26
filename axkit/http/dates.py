"""The HTTP Date header value, formatted at most once a second."""

import time
from email.utils import formatdate, parsedate_to_datetime

_cached_second = 0
_cached_value = b""


def http_date_now():
    """The current time as an IMF-fixdate (bytes), cached per second."""
    global _cached_second, _cached_value
    now = int(time.time())
    if now != _cached_second:
        _cached_second = now
        _cached_value = formatdate(now, usegmt=True).encode("ascii")
    return _cached_value


def http_date(timestamp):
    """A Unix time as an IMF-fixdate string."""
    return formatdate(timestamp, usegmt=True)


def parse_http_date(value):
    """An HTTP date (any of the three RFC 9110 forms) as a Unix time, or None."""
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
