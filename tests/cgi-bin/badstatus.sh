#!/bin/sh
printf 'Status: two hundred\nContent-Type: text/plain\n\nbody\n'
