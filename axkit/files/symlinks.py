"""What a scope's Options say about following symbolic links: one answer
for uri_to_file (which follows them to serve a file) and for directory
listings (which show only the links it would follow)."""

from axkit.config.options import effective_options

FOLLOW, OWNER_MATCH, REFUSE = 0, 1, 2


def symlink_policy(conf):
    """FOLLOW, OWNER_MATCH or REFUSE, from the scope's Options."""
    options = effective_options(tuple(getattr(conf, "options", ())))
    if "FollowSymLinks" in options:
        return FOLLOW
    if "SymLinksIfOwnerMatch" in options:
        return OWNER_MATCH
    return REFUSE
