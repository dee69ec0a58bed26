"""The request body of an ASGI cycle, fed to the app as http.request
messages with backpressure (a mixin of HTTPCycle; reactor side).

One message is in flight at a time: while the app has not received it,
reading from the client is paused (``pause_body``) and what was read
meanwhile is joined into the next message."""


class BodyFeed:
    """HTTPCycle's request-body methods (``self`` is the cycle)."""

    def r_want_body(self):
        if not self.done:
            # What arrived before the app asked goes as one message: held
            # while stream_body hands it over.
            self.held = []
            self.inflight = True
            self.request.stream_body(self.r_on_data, self.r_on_end)
            self.inflight = False
            self._r_pass_body()

    def r_on_data(self, data):
        self.held.append(data)
        request = self.request
        length = request.content_length
        if length is not None and request.body_length >= length:
            # The declared length is all here: the last message says so
            # (no empty message after it, no extra receive()).
            self.body_ended = True
        self._r_pass_body()

    def r_on_end(self):
        self.body_ended = True
        self._r_pass_body()

    def r_body_taken(self):
        self.inflight = False
        self._r_pass_body()

    def _r_pass_body(self):
        if self.final_sent:
            return
        request = self.request
        if self.inflight:
            if not self.body_ended and not self.done:
                request.pause_body()
            return
        held = self.held
        if held or self.body_ended:
            body = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            self.inflight = True
            self.final_sent = self.body_ended
            self.bridge.to_loop(
                self.l_deliver,
                {"type": "http.request", "body": body, "more_body": not self.body_ended},
            )
        if not self.body_ended and not self.done:
            request.resume_body()
