#!/bin/sh
printf 'Status: 301\nLocation: http://example.com/moved\nContent-Type: text/plain\n\nmoved\n'
