"""Every task's flags: one meaning per short flag, and Invoke's ``--dry`` as ``--dry-run``.

Invoke gives each flag the first free letter of its name as a short flag, so the same
letter meant different things on different tasks: ``-d`` was ``--dry-run`` on most writing
tasks but ``--dir`` on ``rollback.parents``, where ``rollback.parents -d X`` rolled back for
real (issue 11). Tasks here are :class:`DeployTask`, which makes no short flags of its own:
the few there are come from :data:`SHORT_FLAGS`, the same on every task. Flags that change
what gets written or restored (``--force``, ``--dir``, ``--to``, ``--run``, ...) have none.

Invoke's core ``--dry`` (``-R``) only makes ``c.run`` echo commands instead of running them;
these tasks do not run commands, so ``invoke --dry deploy`` used to deploy for real. A task
that takes ``--dry-run`` now takes ``--dry`` as ``--dry-run``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Context, Task

T = TypeVar("T", bound=Callable[..., Any])

# long flag -> (its kind, its short flags). A short flag is given only where the long flag
# has this kind: `bench --json FILE` writes a file, unlike every other --json, and gets none.
# `-d` is --dry-run's second short flag because it was --dry-run's short flag on most
# writing tasks: taking it away would hand it to Invoke's core `-d` (--debug), and a habit of
# `invoke deploy -d` would deploy for real.
SHORT_FLAGS: dict[str, tuple[type, tuple[str, ...]]] = {
    "dry-run": (bool, ("n", "d")),
    "json": (bool, ("j",)),
    "wait": (int, ("w",)),
    "quick": (bool, ("q",)),
}


class DeployTask(Task[T]):
    """Invoke's Task with :data:`SHORT_FLAGS` instead of automatic short flags, and Invoke's
    ``--dry`` taken as ``--dry-run`` by every task that has one."""

    def __init__(self, body: T, **options: Any) -> None:
        options["auto_shortflags"] = False
        super().__init__(body, **options)
        self.takes_dry_run = "dry_run" in inspect.signature(body).parameters

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        long = opts["names"][0]
        kind, shorts = SHORT_FLAGS.get(long, (None, ()))
        if shorts and opts.get("kind") is kind:
            opts["names"] = [long, *shorts]
        return opts

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        if self.takes_dry_run and dry(args[0]):
            kwargs["dry_run"] = True
        return super().__call__(*args, **kwargs)


def task(**options: Any) -> Callable[[T], DeployTask[T]]:
    """``@task(...)`` for this project: Invoke's decorator with :class:`DeployTask`."""

    def wrap(body: T) -> DeployTask[T]:
        return DeployTask(body, **options)

    return wrap


def dry(c: Context) -> bool:
    """Whether Invoke's own ``--dry`` (``-R``, or ``run.dry`` in its config) is on."""
    try:
        return bool(c.config.run.dry)
    except AttributeError:
        return False
