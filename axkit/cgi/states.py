"""The states of a CGI run (axkit.cgi.run tells the story)."""

# HEAD: reading the program's head; BODY: streaming its body; NPH: passing
# an nph- program's bytes through; DRAIN: reading and dropping output nobody
# will see; OVER: the run's answer is over (the process may still be ending).
HEAD, BODY, NPH, DRAIN, OVER = "head", "body", "nph", "drain", "over"
