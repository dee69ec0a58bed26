"""axkit: a pluggable, event-driven HTTP/1.1 application server on Twisted."""

__version__ = "0.1.0"
SERVER_SOFTWARE = f"axkit/{__version__}"
