"""axkit._compat's part for asyncio (axkit.asgi): the loop ASGI apps run on.
The rules of axkit._compat apply (each private name wrapped here, checked by
tests/test_compat.py)."""

# Tested on CPython
# 3.11.7; asyncio's BaseEventLoop internals used here are the same in 3.11 to
# 3.13 (tests/test_compat.py checks each one on the running Python).

_STEPPED_NAMES = (
    "_ready",
    "_scheduled",
    "_run_once",
    "_selector",
    "_debug",
    "_closed",
    "_task_factory",
)


def asyncio_reactor_loop(reactor):
    """The asyncio loop under Twisted's ``AsyncioSelectorReactor`` (its
    private ``_asyncioEventloop``), or None for any other reactor.  Tested
    with Twisted 24.3 to 26.10; missing, an asyncio reactor is taken for
    another one and its apps get a loop thread of their own (correct,
    slower)."""
    return getattr(reactor, "_asyncioEventloop", None)


def stepped_event_loop(arm):
    """A new asyncio event loop for axkit's reactor to step (or None where
    this Python's loop lacks the internals it uses: the caller then runs
    its loop in a thread).  Its methods are the whole interface the ASGI
    bridge needs -- no name of asyncio's internals outside this module:

    * ``turn()``, a reactor poll hook: runs what is ready (a callback, a
      due timer; without polling its selector when no timer is pending),
      then calls ``arm(delay)`` if a timer is pending -- the reactor's own
      timer for its earliest one -- and says whether more is ready;
    * ``step()``: one whole turn of ``_run_once`` that polls its selector
      without waiting (its descriptor, ``selector_fd()``, in the reactor's
      epoll set, is readable);
    * ``queue_task(coro)``: a Task whose first step the next ``turn()``
      runs, kept without a Handle (``step()`` makes Handles of them for a
      turn of asyncio's own);
    * ``start_task(coro)``: a Task whose first step runs now, before the
      call returns, as Python 3.12's eager tasks do -- unless a task is
      running already (one started from inside another's step is queued);
      both use the loop's task factory instead when one is set;
    * ``call_soon`` without the checks a loop stepped by the reactor never
      needs (closed loop, debug mode, the thread), and ``get_debug`` a C
      call (a Task asks it once per request).

    Relies on BaseEventLoop._ready (a deque of Handles), _scheduled (a heap
    of TimerHandles with ``_when``), _run_once, _selector, _debug, _closed,
    _task_factory,
    on asyncio.events.Handle (its _callback, _args, _context, _cancelled,
    _loop, _source_traceback, and what its _run does: ``turn`` does the
    same inline) and _get/_set_running_loop, on
    asyncio.tasks._current_tasks (loop -> its running task), and on the C Task
    scheduling its first step with ``loop.call_soon(step, context=ctx)``
    from its ``__init__`` (CPython 3.11 to 3.13; 3.12's own eager tasks do
    the same).  In debug mode (PYTHONASYNCIODEBUG) ``call_soon`` and tasks
    are asyncio's own."""
    import asyncio
    import itertools
    from asyncio import events

    loop_class = asyncio.SelectorEventLoop
    probe = loop_class()
    try:
        if not all(hasattr(probe, name) for name in _STEPPED_NAMES):
            return None
    finally:
        probe.close()
    get_running = events._get_running_loop
    set_running = events._set_running_loop
    from asyncio import tasks

    # (asyncio.current_task(loop) is a Python function looking up this dict.)
    current_tasks = getattr(tasks, "_current_tasks", None)
    if not isinstance(current_tasks, dict):
        return None
    Task = asyncio.Task
    Handle = events.Handle
    from asyncio import format_helpers

    def failed(handle, error):
        # What Handle._run does with an exception from its callback.
        where = format_helpers._format_callback_source(handle._callback, handle._args)
        context = {"message": f"Exception in callback {where}", "exception": error}
        context["handle"] = handle
        if handle._source_traceback:
            context["source_traceback"] = handle._source_traceback
        handle._loop.call_exception_handler(context)

    yes = itertools.repeat(True).__next__
    no = itertools.repeat(False).__next__

    class SteppedEventLoop(loop_class):
        _eager = False  # the next call_soon is a new task's first step: kept
        _first = None  # (callback, context) it kept

        def set_debug(self, enabled):
            loop_class.set_debug(self, enabled)
            self.get_debug = yes if enabled else no

        def call_soon(self, callback, *args, context=None):
            if self._eager and not args:
                self._eager = False
                self._first = (callback, context)
                return None
            if self._debug or self._closed:
                return loop_class.call_soon(self, callback, *args, context=context)
            handle = Handle(callback, args, self, context)
            self._ready.append(handle)
            return handle

        def _task_and_first_step(self, coro):
            """A Task for ``coro`` and its first step as (callback, context),
            caught from the Task's call_soon instead of queued as a Handle;
            the step is None where Task did not call call_soon as relied on
            (it is queued then, as asyncio would)."""
            self._eager = True
            try:
                task = Task(coro, loop=self)
            except BaseException:
                self._eager = False
                raise
            first = self._first
            if first is None:
                self._eager = False
                return task, None
            self._first = None
            return task, first

        def queue_task(self, coro):
            # A Task whose first step the next turn() runs (before the
            # callbacks queued meanwhile), kept as (callback, context)
            # rather than a Handle.
            if self._debug or self._closed or self._task_factory is not None:
                return self.create_task(coro)
            task, first = self._task_and_first_step(coro)
            if first is not None:
                self._starts.append(first)
            return task

        def start_task(self, coro):
            if self._debug or self._closed or self._task_factory is not None:
                return self.create_task(coro)
            if self in current_tasks:
                return self.queue_task(coro)
            task, first = self._task_and_first_step(coro)
            if first is None:
                return task
            previous = get_running()
            set_running(self)
            try:
                first[1].run(first[0])
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:
                self.call_exception_handler(
                    {"message": "axkit: a task's first step failed", "exception": e}
                )
            finally:
                set_running(previous)
            return task

        def turn(self):
            ready = self._ready
            starts = self._starts
            scheduled = self._scheduled
            if not ready and not starts:
                if not scheduled or scheduled[0]._when > self.time():
                    return False
            elif not scheduled:
                # Callbacks ready and no timer: run them without polling the
                # selector (its I/O comes through step(), on its readability).
                previous = get_running()
                set_running(self)
                n = len(ready)  # (what is queued from now on waits for the next turn)
                try:
                    if starts:
                        self._starts = []
                        for callback, context in starts:
                            try:
                                context.run(callback)
                            except (SystemExit, KeyboardInterrupt):
                                raise
                            except BaseException as e:
                                self.call_exception_handler(
                                    {"message": "axkit: a task's first step failed", "exception": e}
                                )
                    for _ in range(n):
                        handle = ready.popleft()
                        if handle._cancelled:
                            continue
                        # (Handle._run, inlined: a call less per callback.)
                        try:
                            handle._context.run(handle._callback, *handle._args)
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as e:
                            failed(handle, e)
                finally:
                    set_running(previous)
                if scheduled:
                    arm(scheduled[0]._when - self.time())
                return bool(ready or self._starts)
            self.step()
            return bool(ready)

        def step(self):
            if self._closed:
                return
            starts = self._starts
            if starts:
                # (A whole turn of asyncio's own: the first steps as Handles.)
                self._starts = []
                self._ready.extendleft(
                    Handle(callback, (), self, context) for callback, context in reversed(starts)
                )
            if not self._ready:
                # A turn that polls the selector without waiting.
                self.call_soon(_noop)
            previous = get_running()
            set_running(self)
            try:
                self._run_once()
            finally:
                set_running(previous)
            scheduled = self._scheduled
            if scheduled:
                arm(scheduled[0]._when - self.time())

        def selector_fd(self):
            return self._selector.fileno()

    loop = SteppedEventLoop()
    loop._starts = []  # (callback, context): first steps of queue_task's tasks
    return loop


def _noop():
    pass
