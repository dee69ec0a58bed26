"""A worker of ``Workers N``: ``python -m axkit.workers.worker``, started by
the supervisor (axkit.workers.supervisor), never by hand.

It is the single-process server of ``Workers 1`` (AxKitService) with two
differences: it adopts the listening sockets the supervisor passes (file
descriptors, ``--socket FD:FAMILY:ENDPOINT``) instead of binding, and it
talks to the supervisor through two pipes -- it writes ``ready`` on the
control pipe (``--control FD``) once it accepts, and it stops (gracefully,
as on SIGTERM) when its stdin reaches end of file, i.e. when the
supervisor is gone.  SIGTERM drains and exits, SIGUSR1 reopens its logs,
SIGHUP is ignored (the supervisor replaces workers instead).
"""

import argparse
import os
import signal
import sys

from axkit import signals


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m axkit.workers.worker")
    parser.add_argument("--config", help="the config file (default: the built-in one)")
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--control", type=int, default=None, help="fd to write 'ready' on")
    parser.add_argument("--status-dir", default=None, help="where worker figures are shared")
    parser.add_argument("--uid", type=int, default=None, help="drop to this user once listening")
    parser.add_argument("--gid", type=int, default=None, help="and this group")
    parser.add_argument(
        "--socket",
        action="append",
        default=[],
        help="FD:FAMILY:ENDPOINT of a listening socket to adopt (repeatable)",
    )
    return parser.parse_args(argv)


def inherited_sockets(specs):
    """``{endpoint: (fd, family)}`` from ``--socket FD:FAMILY:ENDPOINT``s."""
    found = {}
    for spec in specs:
        fd, family, endpoint = spec.split(":", 2)
        found[endpoint] = (int(fd), int(family))
    return found


class SupervisorLink:
    """The worker's end of the pipes to the supervisor: ``ready()`` says it
    accepts; end of file on stdin (the supervisor exited) stops the worker."""

    def __init__(self, reactor, control_fd):
        from twisted.internet.protocol import Protocol
        from twisted.internet.stdio import StandardIO

        self.reactor = reactor
        link = self

        class Watch(Protocol):
            def connectionLost(self, reason):
                link.lost()

        self.stdio = StandardIO(Watch(), stdin=0, stdout=control_fd, reactor=reactor)

    def ready(self):
        self.stdio.write(f"ready {os.getpid()}\n".encode())

    def lost(self):
        if self.reactor.running:
            self.reactor.stop()


def reopen_on_sigusr1(service):
    """The worker's signal handlers: SIGUSR1 reopens the logs (SIGHUP stays
    ignored; SIGTERM and SIGINT are the reactor's)."""

    def install():
        signals.install(
            service.reactor, service._old_signals, {signal.SIGUSR1: service.reopen_logs}
        )

    return install


def drop_privileges(uid, gid):
    """What twistd -u/-g does, here once the log files are open (-1: keep)."""
    uid = None if uid is None or uid < 0 else uid
    gid = None if gid is None or gid < 0 else gid
    if uid is None and gid is None:
        return
    from twisted.logger import Logger
    from twisted.python.util import switchUID

    switchUID(uid, gid)
    Logger(namespace="axkit.workers").info("set uid/gid {uid}/{gid}", uid=uid, gid=gid)


def main(argv=None):
    # The supervisor reloads by replacing workers: a SIGHUP sent to the
    # whole process group (a terminal's hang-up, `kill -HUP -PGID`) must
    # neither kill a worker nor make it reload on its own.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from axkit.reactor import install_default

    install_default()
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from axkit.config.errors import ConfigErrors
    from axkit.tap import load_config

    try:
        config, path = load_config({"config": args.config})
    except ConfigErrors as e:
        for error in e.errors:
            sys.stderr.write(f"{error}\n")
        sys.stderr.write("axkit: worker not started: the config has errors\n")
        sys.exit(2)
    from axkit.server import AxKitService
    from axkit.workers.figures import become_worker
    from axkit.workers.sockets import adopter

    service = AxKitService(config, path, reactor)
    service.install_signal_handlers = reopen_on_sigusr1(service)
    if args.status_dir is not None:
        become_worker(args.slot, args.status_dir, reactor).serving = service.serving_figures
    service.adopt = adopter(reactor, inherited_sockets(args.socket), config.tls)
    globalLogBeginner.beginLoggingTo([service.log_router], redirectStandardIO=False)
    link = SupervisorLink(reactor, args.control) if args.control is not None else None

    if args.uid is not None and args.uid >= 0:
        service.drop_to_uid = args.uid  # (its root-held log opener)

    def start():
        try:
            service.privilegedStartService()
            drop_privileges(args.uid, args.gid)
            service.startService()
        except SystemExit as e:
            sys.stderr.write(f"{e}\n")
            os._exit(2)
        if link is not None:
            reactor.callWhenRunning(link.ready)

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(start)
    reactor.run()
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    main()
