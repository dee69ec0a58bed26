#!/usr/bin/perl
# A CGI.pm form that posts to itself.
use strict;
use warnings;
use CGI;
my $q = CGI->new;
print $q->header(-type => 'text/html', -charset => 'utf-8');
print $q->start_html('axkit CGI form');
print $q->h1('CGI.pm on axkit');
print $q->start_form(-method => 'POST'), 'Your name: ', $q->textfield('name'),
      $q->submit('Send'), $q->end_form;
if (defined(my $name = $q->param('name'))) {
    print $q->p('Hello, ' . $q->escapeHTML($name) . '!');
}
print $q->end_html;
