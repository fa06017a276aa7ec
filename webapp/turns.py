"""One request at a time runs in a worker process; the others wait for their turn.

Python runs one thread of a process at a time (the GIL). A worker still has several threads, so
that a request waiting on Entrust does not hold up the others. But when several requests run at
once, every SQLite call (one per row fetched) lets the interpreter switch to another of them. The
requests then interleave statement by statement, and the switching costs CPU and gains nothing:
the 71-page benchmark mix served about 25% more requests a second with one thread per worker than
with eight (``docs/performance.md``).

So a request takes its worker's turn for as long as it runs, and gives it up while it waits on
something outside the process: an Entrust call (the ECS client's ``waiting`` hook) or a password
hash (which runs without the GIL). Background jobs and the scheduler take no turn.

A request waits at most ``WAIT_SECONDS`` for the turn, then runs beside whoever holds it. So a
turn never makes a request hang: one that waits, holding the turn, for a database lock that
another request of the same worker holds delays that other request by this much at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WAIT_SECONDS = 0.5
NOTE_EVERY_SECONDS = 60.0

log = logging.getLogger(__name__)
_turn = threading.Lock()


class _Local(threading.local):
    held = False  # this thread holds the turn


_local = _Local()
_noted = [float("-inf")]


def _take() -> None:
    _local.held = _turn.acquire(timeout=WAIT_SECONDS)
    if not _local.held and time.monotonic() - _noted[0] >= NOTE_EVERY_SECONDS:
        # Many requests at once, or one holding its turn while it waits on something.
        _noted[0] = time.monotonic()
        log.warning(
            "a request waited %.1f s for its turn in this worker and runs beside another "
            "(noted at most once a minute)",
            WAIT_SECONDS,
        )


def _give_up() -> None:
    if _local.held:
        _local.held = False
        _turn.release()


def wsgi(app: Callable) -> Callable:
    """``app`` (a WSGI callable) run in turns. The turn covers the call, in which a Flask view
    renders its page; a streamed body is produced afterwards, outside it."""

    def in_turn(environ, start_response):
        if _local.held:  # called from within a request: its turn already
            return app(environ, start_response)
        _take()
        try:
            return app(environ, start_response)
        finally:
            _give_up()

    return in_turn


@contextmanager
def outside() -> Iterator[None]:
    """Give up the turn while this thread waits on something outside the process, and take it
    back after. In a thread that holds no turn (a job, the scheduler) it does nothing."""
    if not _local.held:
        yield
        return
    _give_up()
    try:
        yield
    finally:
        _take()
