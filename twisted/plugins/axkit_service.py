"""`twistd axkit`: the axkit HTTP server (imports nothing heavy)."""

from twisted.application.service import ServiceMaker

axkit = ServiceMaker(
    "axkit",
    "axkit.tap",
    "A pluggable, event-driven HTTP/1.1 application server.",
    "axkit",
)
