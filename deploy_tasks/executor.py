"""The executor the ``invoke`` CLI runs this project's tasks with.

The project config is JSON, not YAML: Invoke parses YAML with a pure-Python loader,
about 3 ms of every command (measured on `invoke --list`).

``invoke.json`` beside ``tasks.py`` names it (``tasks.executor_class``, Invoke's own
extension point). Invoke's ``Program`` reads that project config when it loads
``tasks.py`` and builds an executor only once it has parsed a command line that runs
tasks; importing ``tasks`` (the test suite, a library) never builds one, and neither
does ``--list`` or ``--help``.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from invoke import Executor

if TYPE_CHECKING:
    from invoke import ParserContext, Result, Task


class FreezingExecutor(Executor):
    """Invoke's executor, after moving what is loaded by now out of the collector's sight."""

    def execute(self, *tasks: str | tuple[str, dict[str, Any]] | ParserContext
                ) -> dict[Task[Any], Result]:
        # Every task runs in a short-lived process that allocates many small objects: what
        # is loaded by now (Invoke, the stdlib, the task modules, the parsed command line)
        # lives until exit, so gc.freeze() keeps the collector's full passes from walking it
        # (about 10 ms of a 150 ms deploy). Here rather than at the top of tasks.py, where it
        # froze every process that imports tasks.
        gc.freeze()
        try:
            return super().execute(*tasks)
        except KeyboardInterrupt:
            # A SIGINT just before a task's body or just after it (outside the task's own
            # error mapping): Invoke would exit 1 without a word. Nothing of a run is half
            # done there (a session defers signals), so say so and exit as a SIGINT does.
            from deploy_tasks.common import fail

            fail("interrupted", 130)
