"""The HTTP Date header value, formatted at most once a second."""

import calendar
import time
from datetime import datetime
from email.utils import formatdate, parsedate_tz

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
    """An HTTP date (any of the three RFC 9110 forms) as a Unix time, or None.

    HTTP dates are GMT: the obsolete asctime form, which names no zone, is
    read as GMT too (never as the server's local time)."""
    try:
        parts = parsedate_tz(value)
        if parts is None:
            return None
        datetime(*parts[:6])  # a real date and time (no 31 Feb, no 25:00)
        return calendar.timegm(parts[:6] + (0, 1, 0)) - (parts[9] or 0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
