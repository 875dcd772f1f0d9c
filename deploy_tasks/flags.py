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
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Context, Task
from invoke.exceptions import Exit
from invoke.parser import Argument

from deploy_tasks.common import Output, debug_log, guarded, verbose

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
    "verbose": (bool, ("v",)),
}
VERBOSE_HELP = ("log every backup attempt, folder creation, copy, restore and error to stderr "
                "(also DEPLOY_LOG=debug)")
QUIET_HELP = "print only the run's summary line (no per-target lines, no progress)"

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
    "parallel": (1, 64),
}

# The many-hosts flags (issue 15), which DeployTask adds to every task that reads or writes a
# tree (every task taking --prefix) unless it says hosts=False; --all-or-none only where the
# task writes (it takes --dry-run).
HOST_HELP = {
    "hosts": "run on these ssh hosts (user@host:port, ~/.ssh/config aliases, or "
             "[tool.deploy.hosts] groups), comma-separated; each keeps its own tree",
    "parallel": "how many hosts at once with --hosts (default 1: one after another)",
    "all_or_none": "with --hosts: when any host fails, also roll back every host that changed",
}
HOST_FLAGS = tuple(HOST_HELP)


class DeployTask(Task[T]):
    """Invoke's Task with :data:`SHORT_FLAGS` instead of automatic short flags, and Invoke's
    ``--dry`` taken as ``--dry-run`` by every task that has one."""

    def __init__(self, body: T, *, text_flags: tuple[str, ...] = (), hosts: bool = True,
                 placeholders: dict[str, str] | None = None, **options: Any) -> None:
        options["auto_shortflags"] = False
        params = inspect.signature(body).parameters
        self.takes_dry_run = "dry_run" in params
        # Set before Invoke's __init__, which reads the signature through argspec().
        self.host_flags = HOST_FLAGS[:3 if self.takes_dry_run else 2] \
            if hosts and "prefix" in params else ()
        if self.host_flags:
            options["help"] = {**options.get("help", {}),
                               **{k: HOST_HELP[k] for k in self.host_flags}}
        super().__init__(body, **options)
        # Flags named like one of RANGES that take text instead (versions.bump's --to).
        self.text_flags = text_flags
        # What --help shows as a repeatable flag's value (default: its name upper-cased,
        # --name=NAME); deploy_tasks.parsing.ParseGuard.print_task_help reads it.
        self.placeholders = placeholders or {}

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        """The body's flags, and ``--verbose`` (every task) and ``--quiet`` (every task that
        writes), which the task layer handles itself (:meth:`__call__`)."""
        args = list(super().get_arguments(ignore_unknown_help))
        args.append(Argument(names=("verbose", *SHORT_FLAGS["verbose"][1]), kind=bool,
                             default=False, help=VERBOSE_HELP))
        if self.takes_dry_run:
            args.append(Argument(names=("quiet",), kind=bool, default=False, help=QUIET_HELP))
        return args

    def argspec(self, body: Callable[..., Any]) -> inspect.Signature:
        """The body's signature, and the many-hosts flags where this task takes them."""
        sig = super().argspec(body)
        defaults: dict[str, Any] = {"hosts": None, "parallel": 1, "all_or_none": False}
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name])
                 for name in getattr(self, "host_flags", ())]
        return sig.replace(parameters=[*sig.parameters.values(), *extra])

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

        loud, quiet = kwargs.pop("verbose", False), kwargs.pop("quiet", False)
        # What GitHub Actions is told of this task's run, whatever its outcome (issue 14):
        # a task that takes --dry-run writes, and gets a step summary and outputs.
        report = actions.begin(full_name(self), writes=self.takes_dry_run,
                               json_=bool(kwargs.get("json_")), prefix=kwargs.get("prefix"))
        if self.takes_dry_run and dry(args[0]):
            kwargs["dry_run"] = True
        report.dry_run = bool(kwargs.get("dry_run"))
        checked = guarded(self.checked)(kwargs)  # a value out of range: one error line, exit 2
        if loud:
            debug_log(force=True)
        Output.quiet = bool(quiet)
        if self.host_flags:
            hosts = checked.pop("hosts", None)
            parallel = checked.pop("parallel", 1)
            all_or_none = checked.pop("all_or_none", False)
            # Under `fab -H a,b TASK` Fabric hands each call a Connection: run it there.
            if hosts is not None or is_connection(args[0]):
                from deploy_tasks.remote.fleet import run_task

                # Each host writes its own step summary (appended by run_task, under the
                # host's name); the controller made no run to report of its own.
                report.writes = False
                passed = {**checked, "verbose": loud, "quiet": quiet}  # to every host too
                code = guarded(run_task)(self, args[0], passed, hosts=hosts,
                                         parallel=parallel, all_or_none=all_or_none)
                if code:
                    raise Exit(code=code)
                actions.succeeded()
                return None  # type: ignore[return-value]  # a task's result is unused
        result = self.run_body(args, checked, progress=not (quiet or verbose()))
        actions.succeeded()
        return result

    def run_body(self, args: tuple[Any, ...], kwargs: dict[str, Any], *,
                 progress: bool) -> T:
        """The body, with progress shown on a terminal once it has run a second."""
        if not progress:
            return super().__call__(*args, **kwargs)
        from deploy.plan import watch

        watch(delayed_progress())
        try:
            return super().__call__(*args, **kwargs)
        finally:
            watch(None)
            if Output.progress is not None:
                Output.progress.clear()
                Output.progress = None

    def checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with each whole-number flag of :data:`RANGES` checked and made an int."""
        out = dict(kwargs)
        for name, (low, high) in RANGES.items():
            if out.get(name) is not None and name not in self.text_flags:
                out[name] = whole(out[name], f"--{name}", low=low, high=high)
        return out


PROGRESS_DELAY = 1.0  # seconds a run takes before it shows progress (on a terminal)


def delayed_progress() -> Callable[[str, int, int, str], None]:
    """A progress sink that only reads the clock until :data:`PROGRESS_DELAY` has passed
    (``DEPLOY_PROGRESS_DELAY`` seconds, for tests and for the impatient), and then hands over
    to ``deploy_tasks.progress`` (imported only then)."""
    began = time.monotonic()
    try:
        delay = float(os.environ.get("DEPLOY_PROGRESS_DELAY", PROGRESS_DELAY))
    except ValueError:
        delay = PROGRESS_DELAY

    def sink(doing: str, done: int, total: int, item: str) -> None:
        if time.monotonic() - began >= delay:
            from deploy_tasks.progress import start

            start(doing, done, total, item)

    return sink


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


def is_connection(c: object) -> bool:
    """Whether ``c`` is a ``fabric.Connection`` (without importing Fabric for every task)."""
    return any(k.__module__.startswith("fabric.") and k.__name__ == "Connection"
               for k in type(c).__mro__)


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
