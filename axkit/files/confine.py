"""Whether a path lies inside a folder: the one check behind DocumentRoot
confinement (uri_to_file, serve_dir's listing), XSendFilePath and the
XSLT document() confinement.

Both sides must already be real (``os.path.realpath``: symlinks resolved,
no ``..``); the check is on path components, so ``/srv/www-evil`` is not
inside ``/srv/www``.
"""


def is_inside(path: str, root: str) -> bool:
    """Whether the real path ``path`` is ``root`` itself or below it
    (``root`` with or without its trailing slash)."""
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def inside_any(path: str, roots) -> bool:
    """Whether ``path`` is inside one of ``roots``."""
    return any(is_inside(path, root) for root in roots)
