"""CGITimeout and the client's half-close, for one CGI run.

The deadline is a ``request.deadline()`` on the server's timer wheel, moved
on by every piece of output (and every FED_PROGRESS bytes of body fed in).
When it passes: no head yet -- 504; a head sent -- the response is cut;
the client paused the program but is still taking what the kernel holds
for it -- more time; the client half-closed and the program was silent
for HALF_CLOSED_GRACE -- it is taken as gone.
"""

from twisted.logger import Logger

from .states import BODY, DRAIN, HEAD, NPH, OVER

log = Logger(namespace="axkit.cgi")

# After the client closes its sending side (a FIN), it may still be reading
# (``nc -N``) or be gone: a write would tell, silence cannot.  A program
# silent this long from then on is taken as answering nobody (nginx stops
# an upstream at once; Apache waits for its Timeout).
HALF_CLOSED_GRACE = 2.0


class Timeouts:
    """CGIRun's part that keeps its time (a mixin)."""

    __slots__ = ()

    def client_half_closed(self):
        if self.ended or self.state in (OVER, DRAIN) or self.half_closed:
            return
        self.half_closed = True
        if self.timeout > HALF_CLOSED_GRACE:
            self.timeout = HALF_CLOSED_GRACE
        deadline = self.deadline
        if deadline is not None:
            left = deadline.remaining()
            if left is not None and self.timeout < left:
                deadline.after(self.timeout)

    def _touch(self):
        # deadline.extend(self.timeout), inlined: this runs for every piece
        # of the program's output.
        deadline = self.deadline
        if deadline is not None and deadline.when is not None:
            when = deadline.clock() + self.timeout
            if when >= deadline.when:
                deadline.when = when
            else:
                deadline.at(when)

    def _client_draining(self):
        """CGITimeout with the program's pipe paused by the client: whether
        the client took a fair share of its unread bytes from the
        kernel's queue since the last look (it reads, slower than that
        queue -- MBs -- frees room for more; not silence).  If so, the
        deadline is moved on."""
        request = self.request
        if not request.client_read_since(self.unsent_mark):
            return False
        self.unsent_mark = request.send_queue()
        self.deadline.after(self.timeout)
        return True

    def _disarm(self):
        deadline = self.deadline
        if deadline is not None:
            # Dropped, not only cancelled: it holds this run (its on_expire),
            # and a run must be freed without the cycle collector.
            self.deadline = None
            deadline.cancel()

    def _timed_out(self):
        request = self.request
        state = self.state
        if state in (BODY, NPH) and self.paused and self._client_draining():
            return
        if self.half_closed and state in (HEAD, BODY, NPH):
            log.info(
                "{script}: client went away (it closed its side, and the script "
                "was silent for {grace:g}s after); terminating the script",
                script=self.script,
                grace=self.timeout,
                request=request,
                plugin="cgi",
            )
            self.state = OVER
            self._kill("client half-closed")
            self._unproduce()
            if state == HEAD and not request.finished:
                request.send_error(504)
            elif not request.finished:
                request.abort()
            return
        if state == HEAD:
            self.state = OVER
            self._fault(
                f"no response head within CGITimeout ({self.timeout:g}s); process group killed", 504
            )
            self._kill("timeout")
            if not request.finished:
                request.send_error(504)
        elif state in (BODY, NPH):
            self.state = OVER
            if self.paused:
                self._fault(
                    f"client read nothing for CGITimeout ({self.timeout:g}s); "
                    "response cut, process group killed",
                    None,
                )
            else:
                self._fault(
                    f"no output for CGITimeout ({self.timeout:g}s) after the "
                    "head was sent; response cut, process group killed",
                    None,
                )
            self._kill("timeout")
            self._unproduce()
            request.abort()
        elif not self.killed:
            # The response is over but the process lingers.
            self._fault(
                f"still running CGITimeout ({self.timeout:g}s) after its "
                "response; process group killed",
                None,
            )
            self._kill("lingering")
