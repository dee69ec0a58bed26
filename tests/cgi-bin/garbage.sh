#!/bin/sh
printf 'this is not a header line\n\nbody\n'
