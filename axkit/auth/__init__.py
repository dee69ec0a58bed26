"""Authentication helpers: Apache's htpasswd and group files."""
