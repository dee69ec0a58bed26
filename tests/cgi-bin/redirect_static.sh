#!/bin/sh
# A local redirect to a static document (not another program).
printf 'Location: /static.txt\n\n'
