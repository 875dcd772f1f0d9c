"""Every task's flags: one meaning per short flag, Invoke's ``--dry`` as ``--dry-run``, and
flag values checked against their range.

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

from deploy_tasks.common import guarded

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

# SQLite integers are 64-bit signed: a row id or LIMIT beyond this overflows.
INT64_MAX = 2**63 - 1
# --wait SECONDS: from 0 (the default: do not wait) to a day.
WAIT_MAX = 86400
# The whole-number flags and their ranges, checked (and text made an int) before a task's
# body runs, whatever task takes them: ids and counts up to SQLite's largest integer.
RANGES: dict[str, tuple[int, int]] = {
    "wait": (0, WAIT_MAX),
    "limit": (0, INT64_MAX),    # 0: no limit
    "page": (1, INT64_MAX),
    "to": (1, INT64_MAX),       # a backup id (rollback; versions.bump's --to is a version)
    "run": (1, INT64_MAX),
    "render": (1, INT64_MAX),
}


class DeployTask(Task[T]):
    """Invoke's Task with :data:`SHORT_FLAGS` instead of automatic short flags, and Invoke's
    ``--dry`` taken as ``--dry-run`` by every task that has one."""

    def __init__(self, body: T, *, text_flags: tuple[str, ...] = (), **options: Any) -> None:
        options["auto_shortflags"] = False
        super().__init__(body, **options)
        self.takes_dry_run = "dry_run" in inspect.signature(body).parameters
        # Flags named like one of RANGES that take text instead (versions.bump's --to).
        self.text_flags = text_flags

    def __deepcopy__(self, memo: dict[int, Any]) -> DeployTask[T]:
        # Invoke deep-copies every task when it loads the collection (``from_module``); a
        # task is not changed once defined, so the copy is the task itself (a few ms of
        # every command's start-up).
        return self

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        long = opts["names"][0]
        kind, shorts = SHORT_FLAGS.get(long, (None, ()))
        if shorts and opts.get("kind") is kind:
            opts["names"] = [long, *shorts]
        return opts

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        from deploy_tasks import actions

        # What GitHub Actions is told of this task's run, whatever its outcome (issue 14):
        # a task that takes --dry-run writes, and gets a step summary and outputs.
        report = actions.begin(full_name(self), writes=self.takes_dry_run,
                               json_=bool(kwargs.get("json_")), prefix=kwargs.get("prefix"))
        if self.takes_dry_run and dry(args[0]):
            kwargs["dry_run"] = True
        report.dry_run = bool(kwargs.get("dry_run"))
        checked = guarded(self.checked)(kwargs)  # a value out of range: one error line, exit 2
        result = super().__call__(*args, **checked)
        actions.succeeded()
        return result

    def checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with each whole-number flag of :data:`RANGES` checked and made an int."""
        out = dict(kwargs)
        for name, (low, high) in RANGES.items():
            if out.get(name) is not None and name not in self.text_flags:
                out[name] = whole(out[name], f"--{name}", low=low, high=high)
        return out


def full_name(task: Task[Any]) -> str:
    """The task's dotted name in the task tree (``deploy.templates``; a collection's
    default task by the collection's name: ``deploy``), else its own name."""
    from deploy_tasks.collection import ns

    def find(collection: Any, prefix: str) -> str | None:
        for name, found in collection.tasks.items():
            if found.body is task.body:
                return prefix.rstrip(".") if name == collection.default and prefix \
                    else prefix + name
        for name, sub in collection.collections.items():
            hit = find(sub, f"{prefix}{name}.")
            if hit is not None:
                return hit
        return None

    return find(ns, "") or str(task.name)


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


def _abridged(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-4:]} ({len(text)} characters)"


def whole(value: object, flag: str, *, low: int = 1, high: int = INT64_MAX) -> int:
    """``value`` of ``flag`` as an int from ``low`` to ``high``; else ConfigError (exit 2).

    Flags without a typed default (``--to``, ``--run``, ``--render``) reach a task as text;
    typed ones (``--limit``, ``--page``, ``--wait``) as ints that may still be far out of
    range (SQLite's integers stop at 2**63 - 1).
    """
    from deploy.errors import ConfigError

    text = str(value).strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise ConfigError(f"{flag} {_abridged(text)!r}: not a whole number")
    # Count digits before converting: int() refuses strings of more than 4300 digits.
    if len(digits.lstrip("0")) > len(str(max(abs(low), abs(high)))) \
            or not low <= (number := int(text)) <= high:
        raise ConfigError(f"{flag} {_abridged(text)}: out of range; from {low} to {high}")
    return number


def optional_whole(value: object, flag: str, *, low: int = 1,
                   high: int = INT64_MAX) -> int | None:
    """:func:`whole`, with None (the flag not given) passed through."""
    return None if value is None else whole(value, flag, low=low, high=high)
