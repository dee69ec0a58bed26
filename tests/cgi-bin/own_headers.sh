#!/bin/sh
# Sets fields a Header directive may also set (Apache applies Header after the program).
printf 'Content-Type: text/plain\nCache-Control: no-store\nX-Program: mine\nX-Keep: program\nX-Gone: program\n\nbody\n'
