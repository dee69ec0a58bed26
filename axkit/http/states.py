"""The names of a connection's states, deadline kinds and pause reasons.

States (``connection.state``), by what the connection waits for:

* IDLE -- between requests (KeepAliveTimeout; a fresh connection waits
  RequestHeaderTimeout for its first byte), closed silently when it expires;
* HEADERS -- a request head has started (RequestHeaderTimeout from its first
  byte; drip-feeding cannot extend it), 408 when it expires;
* BODY -- a request body is being read (RequestBodyTimeout between pieces);
* RESPONDING -- the active request's response is being produced.

A deadline (``connection._deadline_state``) is of one of those kinds, or:

* SENDING -- the response in progress waits on the client (SendTimeout);
* LINGERING -- closing: what the client still sends is read and dropped.
"""

IDLE, HEADERS, BODY, RESPONDING = "idle", "headers", "body", "responding"
SENDING = "sending"
LINGERING = "lingering"

# Reasons to stop reading from the socket (a bit set, ``connection._paused``):
# too many pipelined requests queued; a request body nobody consumes yet;
# an error answer waits behind earlier responses (nothing more is read);
# what follows a request asking for an Upgrade waits for its answer (a 101
# hands it to the new protocol, any other answer lets it be parsed).
PAUSE_PIPELINE, PAUSE_BODY, PAUSE_FATAL, PAUSE_UPGRADE = 1, 2, 4, 8

# The states of a response (``request.state``).
HEAD_PENDING = 0  # nothing sent yet
STREAMING = 1  # head sent, body in progress
FINISHED = 2  # complete (or aborted)
