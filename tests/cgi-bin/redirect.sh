#!/bin/sh
# A local redirect (RFC 3875 6.2.2): the server answers with the other path.
# (A fragment in it is dropped, as Apache drops it.)
printf 'Location: /cgi-bin/env.py/p?from=redirect#frag\n\n'
