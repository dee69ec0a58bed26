#!/bin/sh
echo "about to crash" >&2
exit 3
