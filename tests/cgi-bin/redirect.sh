#!/bin/sh
# A local redirect (RFC 3875 6.2.2): the server answers with the other path.
printf 'Location: /cgi-bin/env.py?from=redirect\n\n'
