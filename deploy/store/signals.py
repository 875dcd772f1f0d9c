"""Signals are deferred while a session changes targets or the index, then handled as a
failure: the run restores what it changed, records itself truthfully and exits 128 + N.

GitHub Actions cancels a job with SIGINT, then SIGTERM, then SIGKILL a few seconds later.
Without this, a SIGINT between a rename and the index line that records it left a target
with the new bytes while the index said the change was reverted (5 times in 6 trials).
Python runs a handler only between bytecodes, so the handler just notes the signal and
the store asks at points where nothing is half done (``Deferral.check``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from deploy.errors import Interrupted

DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Deferral:
    """The first deferred signal that arrived, if any."""

    def __init__(self) -> None:
        self.caught: int | None = None

    def note(self, signum: int, _frame: FrameType | None) -> None:
        if self.caught is None:
            self.caught = signum

    def check(self, outcome: str = "") -> None:
        """Raise :class:`Interrupted` if a signal arrived (``outcome`` says what it leaves);
        call it only where nothing is half done."""
        if self.caught is not None:
            name = signal.Signals(self.caught).name
            raise Interrupted(f"interrupted by {name}{'; ' + outcome if outcome else ''}",
                              self.caught)


@contextmanager
def deferred() -> Iterator[Deferral]:
    """Note SIGINT, SIGTERM and SIGHUP instead of acting on them, for the body.

    Handlers can only be set from the main thread; elsewhere (a library caller's worker
    thread) nothing is deferred and the checks never fire.
    """
    deferral = Deferral()
    if threading.current_thread() is not threading.main_thread():
        yield deferral
        return
    previous = {signum: signal.signal(signum, deferral.note) for signum in DEFERRED}
    try:
        yield deferral
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
