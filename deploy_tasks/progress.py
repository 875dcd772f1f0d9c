"""Progress on a terminal: ``[12/200] writing scripts/foo`` on stderr, rewritten in place.

A run that takes more than a second shows where it is, when stderr is a terminal; the line
is cleared before anything else is printed and at the end, so the output reads as without
it. The planners and the store tick once per file (``deploy.plan.tick``); until a second
has passed the sink only reads the clock (``time.monotonic``: no system call on Linux), and
only then is this module imported and stderr asked whether it is a terminal (``isatty`` is
a system call). A run that ends sooner, such as the no-change path, pays for none of it.
``--quiet`` and ``--verbose`` (whose log lines it would tear) turn it off.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from deploy.plan import watch
from deploy_tasks.output import Output, shown

INTERVAL = 0.1   # at most ten redraws a second
CLEAR = "\r\x1b[K"


class Terminal:
    """The sink that draws the progress line on ``stream`` (stderr), once it is known to be
    a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.width = max(shutil.get_terminal_size().columns - 1, 10)
        self.drawn = 0.0
        self.showing = False

    def __call__(self, doing: str, done: int, total: int, item: str) -> None:
        now = time.monotonic()
        if now - self.drawn < INTERVAL and done != total:
            return
        self.drawn = now
        self.stream.write(CLEAR + shown(f"[{done}/{total}] {doing} {item}")[:self.width])
        self.stream.flush()
        self.showing = True

    def clear(self) -> None:
        """Take the progress line away, if one is showing (the next tick draws it again)."""
        if self.showing:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.showing = False


def start(doing: str, done: int, total: int, item: str) -> None:
    """The first tick after the delay: draw from now on if stderr is a terminal, else stop
    listening."""
    if not sys.stderr.isatty():
        watch(None)
        return
    terminal = Output.progress = Terminal(sys.stderr)
    watch(terminal)
    terminal(doing, done, total, item)
