"""``Workers N``: a supervisor process that binds the listeners and N worker
processes that serve them (supervisor.py, worker.py, sockets.py)."""
