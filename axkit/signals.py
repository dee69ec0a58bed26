"""SIGHUP and SIGUSR1 for a service (the server, the Workers supervisor, a
worker): each handled on the reactor thread, the previous handlers kept to
be put back at stop."""

import signal


def install(reactor, saved, actions):
    """Route each ``{signum: action}`` of ``actions`` to ``action()`` on the
    reactor thread (a handler only hands the work over); the handler each
    replaced goes in ``saved``.  A signal already in ``saved`` is left as it
    is (installed early, before the ports were bound).  Outside the main
    thread (tests driving a service) nothing is installed."""
    for signum, action in actions.items():
        if signum in saved:
            continue

        def handler(number, frame, action=action):
            reactor.callFromThread(action)

        try:
            saved[signum] = signal.signal(signum, handler)
        except ValueError:
            pass  # not the main thread: no signals


def restore(saved):
    """Put back the handlers ``install`` replaced, and forget them."""
    for signum, old in saved.items():
        try:
            signal.signal(signum, old)
        except (ValueError, TypeError):
            pass
    saved.clear()
