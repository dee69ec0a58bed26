"""`twistd --reactor=axkit`: epoll with a lean dispatch for axkit's connections
(`twistd axkit` installs it by default; see axkit/reactor.py)."""

from twisted.application.reactors import Reactor

axkit = Reactor(
    "axkit",
    "axkit.reactor",
    "epoll(4) reactor that dispatches axkit's HTTP connections "
    "without the per-event legacy log context.",
)
