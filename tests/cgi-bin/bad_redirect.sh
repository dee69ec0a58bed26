#!/bin/sh
# A local redirect to a path that is not a valid URL path.
echo 'Location: /a%ZZ/../../etc/passwd'
echo
