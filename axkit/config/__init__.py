"""The config language: what a plugin imports to declare its directives.

    from axkit.config import Directive, duration, mimetype, many, MAP, ANY
"""

from .directives import (ANY, APPEND, FILES, GLOBAL, LOCATION, MAP, NOT_FILES, PREPEND,
                         RAW, REPLACE, REPLACE_LIST, SERVER, SERVER_ONLY, Directive, many, optional)
from .errors import ConfigError, ConfigErrors
from .types import (count, duration, endpoint, flag, integer, list_of, mimetype, one_of,
                    path, regex, size, string, url_path)

__all__ = [
    "ANY", "APPEND", "FILES", "GLOBAL", "LOCATION", "MAP", "NOT_FILES", "PREPEND", "RAW",
    "REPLACE", "REPLACE_LIST", "SERVER", "SERVER_ONLY", "Directive", "many", "optional", "ConfigError",
    "ConfigErrors", "count", "duration", "endpoint", "flag", "integer", "list_of", "mimetype",
    "one_of", "path", "regex", "size", "string", "url_path",
]
