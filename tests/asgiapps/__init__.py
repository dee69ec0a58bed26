"""ASGI test applications (tests/test_asgi_*.py)."""
