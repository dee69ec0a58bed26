"""The states of a response (``request.state``)."""

HEAD_PENDING = 0   # nothing sent yet
STREAMING = 1      # head sent, body in progress
FINISHED = 2       # complete (or aborted)
