#!/usr/bin/perl
# A classic CGI.pm program: form parameters (GET, urlencoded or multipart
# POST, including a file upload), a cookie, the header from CGI.pm.
use strict;
use warnings;
use CGI;
my $q = CGI->new;
my $name = $q->param('name') // 'nobody';
my $cookie = $q->cookie(-name => 'seen', -value => 'yes');
print $q->header(-type => 'text/html', -charset => 'utf-8', -cookie => $cookie);
print $q->start_html('CGI.pm test');
print $q->h1('Hello ' . $q->escapeHTML($name));
print $q->p('method=' . $q->request_method . ' path_info=' . ($q->path_info || '-'));
my $fh = $q->upload('file');
if ($fh) {
    binmode $fh;
    my ($size, $lines) = (0, 0);
    while (my $line = <$fh>) { $size += length $line; $lines++ }
    print $q->p("upload=" . $q->param('file') . " size=$size lines=$lines");
}
print $q->end_html;
