#!/usr/bin/perl
# Echoes the request body, reading exactly CONTENT_LENGTH bytes (as most
# real CGI programs do).
use strict;
binmode STDIN; binmode STDOUT;
my $len = $ENV{CONTENT_LENGTH} || 0;
my $body = '';
while (length($body) < $len) {
    my $n = read(STDIN, $body, $len - length($body), length($body));
    last unless $n;
}
print "Content-Type: application/octet-stream\n";
print "X-Length-Seen: $len\n\n";
print $body;
