"""One CGI request: the request body into the script, its output to the client.

The story of a run, and every way it can end:

* the script's stdout is read until the blank line that ends its header
  block (§6): that head becomes the response head -- or a local redirect
  (the server answers with another path), or a 502 when it is malformed;
* the rest of stdout is the body, written to the client as it comes
  (chunked when the script gives no Content-Length); a client that does not
  keep up pauses the script's pipe, so the server's buffers stay small;
* the request body goes to the script's stdin as it arrives; the client's
  socket is paused while the pipe is full;
* stderr goes to the error log, a line at a time, tagged with the script;
* no output for CGITimeout: the script's process group is killed, and the
  client gets a 504 (or, if the head was sent, a cut connection);
* the client goes away: the process group is terminated (SIGTERM, then
  SIGKILL after KILL_GRACE seconds).

Each fault writes one log line naming the script.

Why ~600 lines: this module is the state machine of a program's output
(head, body, nph, local redirect, the end in each state) -- one story,
best read in one place.  CGIRun's other parts are mixins in their own
modules: stdin.py, stderr.py, timeouts.py (slots.py and holds.py hold what
runs share).
"""

import errno
import os
import signal

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from zope.interface import implementer

from axkit.http.headers import Headers
from axkit.http.paths import BadTarget, normalize_path
from axkit.http.request import RequestWatcher
from axkit.http.status import has_no_body
from axkit.notes import CGI_REDIRECTS

from .holds import HOLD_BELOW, _holds
from .response import MAX_HEAD, BadHead, find_head_end, nph_status, parse_head
from .slots import KILL_GRACE, SLOTS
from .spawn import spawn
from .states import BODY, DRAIN, HEAD, NPH, OVER
from .stderr import StderrLogging
from .stdin import StdinFeeding, _BodyThrottle
from .timeouts import Timeouts

log = Logger(namespace="axkit.cgi")

MAX_REDIRECTS = 10  # local redirects followed for one request (as Apache)

_reactor = None


def _global_reactor():
    # Imported on first use, not with this module: twistd installs its
    # reactor after the plugins are imported.
    global _reactor
    if _reactor is None:
        from twisted.internet import reactor

        _reactor = reactor
    return _reactor


@implementer(IPushProducer)
class CGIRun(StdinFeeding, StderrLogging, Timeouts, ProcessProtocol, RequestWatcher):
    """Drives one script for one request: the state machine of its output
    (this module), its stdin (stdin.py), stderr (stderr.py) and time
    (timeouts.py), its slot (slots.py)."""

    # What most runs never change, as class attributes (fewer per request).
    process = None
    ended = False
    head_buffer = b""
    held = None  # the _Holds a short first output waits in (see HOLD)
    remaining = None  # body bytes still allowed by Content-Length
    paused = False  # client backpressure on stdout
    producing = False  # registered as the client's producer
    stdin_open = False
    throttle = None
    stdin_is_file = False  # stdin is a file (a spooled body, /dev/null)
    stdin_data = None  # a whole body to write once the process exists
    after_spawn = None  # called once the process exists or failed to
    kill_timer = None
    killed = None  # why the group was signalled, if it was
    half_closed = False  # the client sent its FIN (see HALF_CLOSED_GRACE)
    unsent_mark = None  # the client's unread bytes when last looked at
    body_fed = 0  # body bytes fed since CGITimeout was last moved
    stderr_buffer = b""
    stderr_backlog = None  # lines waiting for their turn (see STDERR_BATCH)
    fault_logged = False
    # CGITimeout: the time by which the program must write (or the client
    # read) again -- a request.deadline() (the server's timer wheel: no
    # reactor timer per run), moved on by every piece of output.
    deadline = None

    def __init__(
        self, request, script, argv, env, timeout, nph=False, reactor=None, executable=None
    ):
        self.reactor = reactor if reactor is not None else _global_reactor()
        self.request = request
        self.script = script
        # What is exec'd: the script itself, or its CGIInterpreter.
        self.executable = executable or script
        self.argv = argv
        self.env = env
        self.timeout = timeout
        self.nph = nph
        self.state = HEAD

    # -- starting ------------------------------------------------------------

    def start(self, stdin_data=None, stdin_file=None, after=None):
        """Spawn the script (off the reactor thread).  A failure to start is
        answered here (403, or 502 -- also when no pipe can be made).
        ``after()`` is called once the child exists or has failed to (the
        caller may then close ``stdin_file``)."""
        request = self.request
        self.deadline = request.deadline(self._timed_out)
        self.deadline.after(self.timeout)
        request.watch(self)  # request_ended, client_half_closed
        if stdin_file is not None:
            stdin_fd = stdin_file.fileno()
            self.stdin_is_file = True
        elif stdin_data is None and not self._has_body():
            stdin_fd = _devnull()  # no body: no pipe to make, feed and close
            self.stdin_is_file = True
        else:
            stdin_fd = None
            self.stdin_data = stdin_data
        if after is not None:
            self.after_spawn = after
        script = self.script
        # (The folder of an absolute file name; "/" for one at the root.)
        spawn(
            self.reactor,
            self,
            self.executable,
            self.argv,
            self.env,
            script[: script.rfind("/")] or "/",
            stdin_fd,
            self._spawned,
        )

    def _spawned(self, proc, error):
        try:
            if error is None:
                self._started(proc)
            else:
                self._spawn_failed(error)
        finally:
            after = self.after_spawn
            if after is not None:
                self.after_spawn = None
                after()

    def _started(self, proc):
        self.process = proc
        SLOTS.running.add(self)
        SLOTS.on_shutdown(self.reactor)
        request = self.request
        if self.state == OVER:
            # Timed out or the client left while the process was being made.
            self._kill(self.killed or "abandoned")
            return
        if self.stdin_is_file:
            return
        stdin_data = self.stdin_data
        if stdin_data is not None or not self._has_body():
            self.stdin_data = None
            if stdin_data:
                proc.write(stdin_data)
            proc.closeStdin()
            return
        # A Content-Length body: streamed in as it arrives; a full pipe
        # pauses reading from the client.
        self.stdin_open = True
        self.throttle = _BodyThrottle(self)
        proc.pipes[0].registerProducer(self.throttle, True)
        request.stream_body(self._body_data, self._body_end)

    def _spawn_failed(self, e):
        SLOTS.give()
        self._disarm()
        self.ended = True
        status = 403 if getattr(e, "errno", None) in (errno.EACCES, errno.EPERM) else 502
        if self.state == OVER:
            return
        self.state = OVER
        self._fault(f"cannot be started: {getattr(e, 'strerror', None) or e}", status)
        if not self.request.finished:
            self.request.send_error(status)

    # -- the process -------------------------------------------------------------

    def childDataReceived(self, fd, data):
        if fd == 1:
            self._stdout(data)
        elif fd == 2:
            self._stderr(data)

    def childDataEnding(self, fd, data):
        """``data``, and the pipe's end of file right behind it (one read saw
        both): a program's whole output at once.  Its response can then
        leave in one send, with a Content-Length."""
        if fd == 1:
            self._stdout(data, True)
        elif fd == 2:
            self._stderr(data)

    def _stdout(self, data, ending=False):
        state = self.state
        if state == BODY:
            self._touch()
            self._body(data)
        elif state == HEAD:
            self._touch()
            if self.nph:
                self._start_nph(data)
                return
            buffer = self.head_buffer + data if self.head_buffer else data
            found = find_head_end(buffer)
            if found is None:
                if len(buffer) > MAX_HEAD:
                    self._bad_gateway(f"header block longer than {MAX_HEAD} bytes")
                    return
                self.head_buffer = buffer
                return
            if self.held is not None:
                # More output after a held head: stream from here.
                self.held.done()
                self.held = None
            elif not ending and len(data) < HOLD_BELOW:
                # A short head and body, the program not yet at its end:
                # usually it is about to exit.  Wait a moment for the end of
                # the pipe, so the answer can leave whole (see HOLD).
                self.head_buffer = buffer
                self.held = _holds(self.reactor).add(self)
                return
            self._head_complete(buffer, found, ending)
        elif state == NPH:
            self._touch()
            self.request.write_raw(data)
        # DRAIN/OVER: output nobody will see (redirected, failed, or HEAD after
        # an error): read and dropped so the script can finish.

    def _head_complete(self, buffer, found, ending):
        self.head_buffer = b""
        end, body_start = found
        if end > MAX_HEAD:
            # (However the reads fell: a head found in one read is held to
            # the same bound as one still growing.)
            self._bad_gateway(f"header block longer than {MAX_HEAD} bytes")
            return
        try:
            head = parse_head(buffer[:end])
        except BadHead as e:
            self._bad_gateway(f"malformed response head: {e}")
            return
        self._respond(head, buffer[body_start:], ending)

    def _release(self):
        """HOLD is over and the program is still writing: stream."""
        self.held = None
        if self.state == HEAD:
            buffer = self.head_buffer
            self._head_complete(buffer, find_head_end(buffer), False)

    def _respond(self, head, rest, ending=False):
        request = self.request
        if request.finished:
            self.state = DRAIN
            return
        if head.local_redirect:
            self._local_redirect(head.location)
            return
        # (Header directives apply over the program's fields, as in Apache.)
        if request.add_handler_fields(head.headers) is False:
            # Answered in its place (X-Sendfile): its output is read and
            # dropped while it runs to its end.
            self.state = DRAIN
            self._close_stdin()
            return
        self.state = BODY
        length = head.content_length
        whole = ending and (length is None or length == len(rest))
        if request.head_only or has_no_body(head.status):
            # No body is sent; a program may write one or not (php-cgi and
            # fossil do not for a HEAD, and give the GET's Content-Length or
            # none; a 304 may carry the representation's length).
            self.remaining = None
            if whole and not rest:
                whole = False
        else:
            self.remaining = length
        try:
            # The program's own reason phrase goes out with its status (as
            # Apache sends it), when it is one the status line can carry.
            request.reason_text = head.reason
            if whole:
                # All of the output is here (the pipe is at its end): head
                # and body in one send, with a Content-Length -- as Apache's
                # and lighttpd's answers to a program that has finished.
                self.state = OVER
                request.send(head.status, rest)
                self._close_stdin()
                return
            request.start_response(head.status, length)
            if request.head_only:
                # The head is all a HEAD gets: the answer ends here, and the
                # program's output is read no more -- its stdout closed, so
                # one writing without end gets EPIPE, instead of the server
                # reading and dropping it for as long as the client stays.
                self.state = DRAIN
                self._close_stdin()
                request.finish()
                if self.process is not None:
                    self.process.close_output(1)
                return
        except Exception as e:  # a header the engine refuses to send
            self.state = OVER
            self._fault(f"response head refused: {e}", 502)
            request.response_headers = Headers()
            request.send_error(502)
            self._kill("refused head")
            return
        if rest:
            # Before registering as the producer: with none registered and
            # nothing queued, the engine sends at once.
            self._body(rest)
        self._produce()

    def _body(self, data):
        request = self.request
        if request.finished:
            return
        remaining = self.remaining
        if remaining is not None:
            if len(data) > remaining:
                self._fault_once("wrote more than its Content-Length; extra bytes dropped")
                data = data[:remaining]
            self.remaining = remaining - len(data)
        request.write(data)

    def _start_nph(self, data):
        # An nph- script speaks HTTP itself: its bytes go to the client as they
        # are, and the connection closes after them (we cannot see the framing).
        request = self.request
        self.state = NPH
        if request.finished:
            self.state = DRAIN
            return
        status = nph_status(data)
        if status is not None:
            request.status = status
        request.write_raw(data)
        self._produce()

    def childConnectionLost(self, fd):
        if fd == 1:
            self._stdout_closed()
        elif fd == 0:
            self._stdin_gone()
        elif fd == 2 and self.stderr_buffer:
            if self.stderr_backlog is not None:
                self.stderr_backlog.append(self.stderr_buffer)
            else:
                self._log_stderr(self.stderr_buffer)
            self.stderr_buffer = b""

    def _stdout_closed(self):
        state = self.state
        request = self.request
        if self.held is not None:
            # The end came while the head was held: the whole answer is here.
            self.held.done()
            self.held = None
            if state == HEAD:
                buffer = self.head_buffer
                self._head_complete(buffer, find_head_end(buffer), True)
                state = self.state
        if state in (BODY, NPH):
            self.state = OVER
            self._close_stdin()
            self._unproduce()
            if not request.finished:
                if self.remaining:
                    self._fault(f"ended {self.remaining} bytes short of its Content-Length", None)
                request.finish()
        elif state == HEAD:
            # Decided when the process has ended, so the log line can say how.
            pass

    def process_over(self, status):
        """The program is reaped (``status`` as waitpid gives it) and every
        pipe is at its end."""
        self.ended = True
        SLOTS.give()
        SLOTS.running.discard(self)
        self._disarm()
        if self.kill_timer is not None:
            self._cancel(self.kill_timer)
            self.kill_timer = None
        if self.state == HEAD:
            self.state = OVER
            how = _describe_exit(status)
            if self.killed:
                return  # already answered by the timeout or the disconnect
            what = (
                "sent no output"
                if not self.head_buffer
                else "ended before the end of its header block"
            )
            self._bad_gateway(f"{what} ({how})")
        elif self.state not in (OVER, DRAIN) and not self.request.finished:
            self.state = OVER
            self._unproduce()
            self.request.finish()
        self.state = OVER

    # -- local redirect --------------------------------------------------------

    def _local_redirect(self, location):
        request = self.request
        # A fragment is the client's business, never part of a path or query
        # (Apache drops it too).
        location = location.partition("#")[0]
        self.state = DRAIN
        self._close_stdin()
        count = request.notes.get(CGI_REDIRECTS, 0) + 1
        if count > MAX_REDIRECTS:
            self._fault(f"more than {MAX_REDIRECTS} local redirects (last to {location})", 500)
            request.send_error(500)
            return
        try:
            normalize_path(location.partition("?")[0])
        except BadTarget as e:
            # The client asked nothing wrong: the program's answer is bad.
            self._fault(f"invalid local redirect to {location!r} ({e})", 502)
            request.send_error(502)
            return
        request.notes[CGI_REDIRECTS] = count
        request.internal_redirect(location)

    # -- the client's side ---------------------------------------------------

    def _produce(self):
        if not self.producing and not self.request.finished:
            self.producing = True
            self.request.register_producer(self, True)

    def _unproduce(self):
        if self.producing:
            self.producing = False
            try:
                self.request.unregister_producer()
            except Exception:
                pass

    def pauseProducing(self):
        self.paused = True
        # What the client has yet to take, to tell a slow reader (it falls)
        # from one reading nothing when CGITimeout comes.
        self.unsent_mark = self.request.send_queue()
        pipe = self.process.pipes.get(1) if self.process is not None else None
        if pipe is not None:
            pipe.stopReading()

    def resumeProducing(self):
        self.paused = False
        self._touch()
        pipe = self.process.pipes.get(1) if self.process is not None else None
        if pipe is not None:
            pipe.startReading()

    def stopProducing(self):
        self.producing = False

    def request_ended(self):
        if self.request.aborted:
            self._client_gone()
        elif self.state in (HEAD, BODY, NPH) and not self.ended:
            # Finished, not by this run (which is OVER or DRAIN when it
            # finishes): the engine answered in its place -- the request's
            # body broke or timed out (400, 408).  Nobody will read the
            # program's answer; it must not wait for the rest of its stdin.
            log.info(
                "{script}: the server answered the request itself ({status}); "
                "terminating the script",
                script=self.script,
                status=self.request.status,
                request=self.request,
                plugin="cgi",
            )
            self.state = OVER
            self._unproduce()
            self._close_stdin()
            self._kill("answered by the server")

    def _client_gone(self):
        self.producing = False
        if not self.ended and self.state != OVER:
            log.info(
                "{script}: client went away; terminating the script",
                script=self.script,
                request=self.request,
                plugin="cgi",
            )
            self.state = OVER
            self._kill("client disconnected")
        elif not self.ended:
            self._kill("client disconnected")

    def _kill(self, why):
        if self.ended or self.process is None:
            return
        if self.killed is None:
            self.killed = why
        self.process.kill_group(signal.SIGTERM)
        # Read its output to the end (and drop it): a pipe left paused by a
        # client that stopped reading would never show its end, and the
        # child is reaped -- its slot given back -- only after that.
        self.paused = False
        pipe = self.process.pipes.get(1)
        if pipe is not None:
            pipe.startReading()
        if self.kill_timer is None:
            self.kill_timer = self.reactor.callLater(KILL_GRACE, self._kill_hard)

    def _kill_hard(self):
        self.kill_timer = None
        if not self.ended:
            self.process.kill_group(signal.SIGKILL)
            self.kill_timer = self.reactor.callLater(KILL_GRACE, self._abandon)

    def _abandon(self):
        # KILL_GRACE after SIGKILL the run has not ended: its pipes are held
        # by a process outside the group, which signals cannot reach.
        self.kill_timer = None
        if not self.ended and self.process is not None:
            log.warn(
                "{script}: its pipes are still held open after the process group "
                "was killed (by a process that left the group?); closing them",
                script=self.script,
                request=self.request,
                plugin="cgi",
            )
            self.process.abandon()

    @staticmethod
    def _cancel(timer):
        if timer is not None and timer.active():
            timer.cancel()

    # -- faults -----------------------------------------------------------------

    def _bad_gateway(self, what):
        self.state = OVER
        self._close_stdin()
        self._fault(what, 502)
        request = self.request
        if not request.finished:
            request.send_error(502)
        if not self.ended:
            self._kill("bad gateway")

    def _fault(self, what, status):
        self.fault_logged = True
        answer = f" -> {status}" if status else ""
        log.error(
            "{script}: {what}{answer}",
            script=self.script,
            what=what,
            answer=answer,
            request=self.request,
            plugin="cgi",
        )

    def _fault_once(self, what):
        if not self.fault_logged:
            self._fault(what, None)


_devnull_fd = None


def _devnull():
    """One descriptor on /dev/null, opened once (close-on-exec, as every fd
    of ours: the child gets its own copy as stdin)."""
    global _devnull_fd
    if _devnull_fd is None:
        _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


def _describe_exit(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"
