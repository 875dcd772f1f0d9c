"""Shared task plumbing: configuration, error mapping, plan and run output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

from invoke.exceptions import Exit

from deploy_tasks.autoprune import RETENTION

# Re-exported: every task module prints through deploy_tasks.common.
from deploy_tasks.output import Output as Output
from deploy_tasks.output import closed_pipe as closed_pipe
from deploy_tasks.output import echo as echo
from deploy_tasks.output import hinted as hinted
from deploy_tasks.output import shown as shown
from deploy_tasks.output import write_text as write_text

if TYPE_CHECKING:
    from deploy.config import Config
    from deploy.plan import Plan
    from deploy.states import RunKind
    from deploy.store import Index, RunResult, Session, Store

ROOT = Path(__file__).resolve().parent.parent
P = ParamSpec("P")
R = TypeVar("R")
# One JSON object of a --json document: string keys, any JSON value.
Record = dict[str, Any]

# The flags' help, written once: every task that writes takes WRITE_HELP's flags, every task
# that only reads READ_HELP's, and every task that deploys rendered files --on-conflict.
WRITE_HELP = {
    "dry_run": "print the plan with unified diffs; write nothing at all",
    "json_": "print one JSON document on stdout",
    "wait": "seconds to wait for another run's lock (default 0), then exit 4",
    "prefix": "stage every target and the state dir under DIR (also DEPLOY_PREFIX)",
}
READ_HELP = {"json_": WRITE_HELP["json_"], "prefix": WRITE_HELP["prefix"]}
CONFLICT_HELP = "when a rendered target was edited by hand: fail (default), keep, overwrite, merge"


def beside_tasks() -> Path:
    """``invoke`` in a checkout: ``DEPLOY_CONFIG``, else the pyproject.toml beside tasks.py."""
    env = os.environ.get("DEPLOY_CONFIG")
    return Path(env) if env else ROOT / "pyproject.toml"


# The command that runs the tasks (recorded as each run's command line) and how it finds its
# config: `invoke` in a checkout, unless the installed command (deploy_tasks.program) says so.
_command = "invoke"
_locate_config: Callable[[], Path] = beside_tasks


def use_entry_point(command: str, locate_config: Callable[[], Path]) -> None:
    global _command, _locate_config
    _command, _locate_config = command, locate_config
    Output.command = command  # the hints name it


def entry_command() -> str:
    """The program that runs the tasks: ``invoke``, or the installed ``claude-pm-deploy``."""
    return _command


def config_path() -> Path:
    return _locate_config()


def settings(prefix: str | None = None) -> Config:
    from deploy.config import load

    staged = prefix or os.environ.get("DEPLOY_PREFIX") or None
    cfg = load(config_path(), prefix=Path(staged).resolve() if staged else None)
    if os.environ.get("DEPLOY_BUNDLE_ROOT"):
        from deploy_tasks.remote.hostenv import on_host

        return on_host(cfg)
    return cfg


def config_and_store(prefix: str | None = None) -> tuple[Config, Store]:
    """The configuration and its backup store: where every task that reads the tree starts.
    The run's project is its config file, or on a host the controller's (``DEPLOY_PROJECT``)."""
    from deploy.store import Store

    cfg = settings(prefix)
    project = os.environ.get("DEPLOY_PROJECT") or str(cfg.path)
    store = Store(cfg.state_dir, project=project)
    RETENTION[store] = cfg.backup  # for writing(): backup.auto_prune
    return cfg, store


def actor() -> str:
    import pwd

    env = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER")
    try:
        return env or pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def command_line() -> str:
    # Escaped like everything shown: the lock file and the index keep it for people to read.
    return shown(" ".join([_command, *sys.argv[1:]]))


def _github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def report_error(message: str, err: BaseException | None = None) -> None:
    """The one ``error:`` line; under GitHub Actions also an ``::error`` command titled with
    the task, at the file and line the error names (``DeployError.path``, ``.line``)."""
    from deploy_tasks import actions

    line = shown(hinted(message.strip()))
    echo(f"error: {line}", err=True)
    if _github():
        file = getattr(err, "path", None) or actions.leading_path(message)
        echo(actions.annotation("error", line, file=file, line=getattr(err, "line", None)),
             err=True)


def verbose() -> bool:
    """Whether the troubleshooting log is on: ``--verbose`` or ``DEPLOY_LOG=debug``."""
    import logging

    return logging.getLogger("deploy").isEnabledFor(logging.DEBUG) \
        or os.environ.get("DEPLOY_LOG", "").lower() == "debug"


def debug_log(*, force: bool = False) -> None:
    """With ``--verbose`` (``force``) or ``DEPLOY_LOG=debug``, the store's troubleshooting log
    (each backup attempt, folder, write, restore and failure, as the guide's troubleshooting
    section logs them) goes to stderr as ``debug:`` lines."""
    if not force and os.environ.get("DEPLOY_LOG", "").lower() != "debug":
        return
    import logging

    logger = logging.getLogger("deploy")
    if logger.handlers:
        return  # already on (a task calling another, or both switches)

    class Escaped(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return shown(super().format(record))  # the paths in it, like every printed name

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Escaped("debug: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Map the toolkit's errors (and stray OSErrors) to one ``error:`` line and an exit code."""
    from deploy.errors import DeployError

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        debug_log()
        json_ = bool(kwargs.get("json_"))
        try:
            return fn(*args, **kwargs)
        except DeployError as err:
            fail(str(err), err.exit_code, err, json_=json_)
        except OSError as err:
            where = err.filename or "?"
            fail(f"{where}: {err.strerror or err}", 1, err, json_=json_)
        except KeyboardInterrupt:
            fail("interrupted", 130, json_=json_)
        except Exception as err:
            # Last resort: a bug of ours still ends in one line, not a traceback, unless
            # DEPLOY_DEBUG asks for it. The reliability suite flags such lines: they name no
            # path.
            if os.environ.get("DEPLOY_DEBUG"):
                raise
            fail(f"unexpected {type(err).__name__}: {err} "
                 "(set DEPLOY_DEBUG=1 for the traceback)", 1, json_=json_)

    return wrapper


def fail(message: str, code: int, err: BaseException | None = None, *,
         json_: bool = False) -> NoReturn:
    """End the task with ``message``: the error line (and its annotation), the ``--json``
    error document, the step summary and outputs (``deploy_tasks.actions``), exit ``code``."""
    from deploy_tasks import actions

    report_error(message, err)
    actions.failed(shown(message.strip()), code, err, json_=json_)
    raise Exit(code=code) from None


# The version of every --json document's shape (schemas/*.json): bumped when a key is removed
# or renamed or its meaning changes; a key added leaves it as it is (README, "Machine-readable
# output"). emit_json() puts it first in every document, so no task can leave it out.
SCHEMA_VERSION = 1


def emit_json(document: Record) -> None:
    from deploy_tasks import actions

    # One write: json.dump streams a large document in a million small writes.
    try:
        sys.stdout.write(json.dumps({"schema_version": SCHEMA_VERSION, **document}, indent=2,
                                    default=str) + "\n")
    except BrokenPipeError:
        closed_pipe(sys.stdout)
    actions.note_emitted()  # a task that fails after this prints no second document


def print_plan(plan: Plan, *, diffs: bool = True) -> None:
    from deploy.plan import unified_diff
    from deploy_tasks.actions import group

    if Output.quiet:
        unchanged = sum(1 for s in plan.skips if s.reason == "unchanged")
        echo(f"would change {len(plan.changes)} target(s), {unchanged} unchanged"
             if plan.changes else "nothing to do: every target is up to date")
        return
    if not plan.changes:
        echo("nothing to do: every target is up to date")
    with group(f"{len(plan.changes)} planned change(s)", len(plan.changes) * (1 + 4 * diffs)):
        for change in plan.changes:
            extra = f" ({change.note})" if change.note else ""
            echo(f"would {change.action:<7} {change.target}{extra}")
            if diffs:
                # The hunks are the file's own lines, each behind its +, - or space; the
                # paths in the header are names, escaped.
                text = unified_diff(change, label=shown)
                if text:
                    write_text(text if text.endswith("\n") else text + "\n")
    unchanged = 0
    for skip in plan.skips:
        if skip.reason == "unchanged":
            unchanged += 1
        else:
            echo(f"skip    {skip.target} ({skip.reason})")
    if unchanged:
        echo(f"{unchanged} target(s) unchanged")


ACTION_PAST = {"create": "created", "update": "updated", "delete": "removed",
               "import": "imported", "backup": "backed up", "adopt": "accepted"}


def planned_record(category: str, target: object, action: str) -> Record:
    """One change of a dry run's JSON: nothing is backed up yet, so no backup and no ids."""
    return {"category": category, "target": str(target), "action": action, "backup": None,
            "change": None, "backup_id": None}


def plan_records(plan: Plan) -> list[Record]:
    """A plan's changes as the ``changes`` of a dry run's JSON."""
    return [planned_record(c.category, c.target, c.action) for c in plan.changes]


def id_keys(change: int, backup: object) -> Record:
    """The two ids of a change in every JSON shape (issue 14: one name for the backup id):
    ``change``, the index row, and ``backup_id``, the same number when the change left a
    backup (what ``--to BACKUP_ID`` restores), null when it did not (the target was absent,
    or it was accepted as it was)."""
    return {"change": change, "backup_id": change if backup else None}


def change_records(result: RunResult) -> list[Record]:
    """A run's changes as the ``changes`` of its JSON: each with its key and ids."""
    return [{"category": a.category, "target": str(a.target), "action": a.action,
             "backup": str(a.backup) if a.backup else None, "key": a.key,
             **id_keys(a.seq, a.backup)} for a in result.changes]


def print_result(result: RunResult, plan: Plan, store: Store, *, kind: RunKind) -> None:
    for run in result.recovered:
        echo(f"note: run {run} was killed part way; recorded as interrupted")
    if result.run is None and not result.changes:
        echo("nothing to do: every target is up to date")
    else:
        echo(f"run {result.run}: {kind}, {len(result.changes)} change(s)")
    if Output.quiet:
        return
    from deploy_tasks.actions import group

    with group(f"{len(result.changes)} change(s)", len(result.changes)):
        for applied in result.changes:
            backup = f"backup {applied.backup.relative_to(store.tree)}" if applied.backup \
                else "as it is, nothing written" if applied.action == "adopt" else "was absent"
            echo(f"  {ACTION_PAST[applied.action]:<8} {applied.target}  "
                 f"({backup}, id {applied.seq})")
    skipped = [s for s in plan.skips if s.reason != "unchanged"]
    for skip in skipped:
        echo(f"  skipped  {skip.target} ({skip.reason})")
    unchanged = len(plan.skips) - len(skipped)
    if unchanged:
        echo(f"  {unchanged} target(s) unchanged")


@contextmanager
def writing(store: Store, wait: int) -> Iterator[Session]:
    """A session on ``store`` for this command line: its lock held (waiting ``wait`` s), its
    runs recording where they came from (commit, ref, CI run).

    When the body recorded a run and ``backup.auto_prune`` is on, retention is applied
    before the lock is let go (``sess.auto_pruned`` says what it did)."""
    from deploy.store import open_session
    from deploy_tasks import actions

    came = actions.provenance(store.project)
    with open_session(store, command=command_line(), actor=actor(), wait=wait,
                      provenance=came) as sess:
        actions.note_session(sess)
        yield sess
        backup = RETENTION.get(store)
        if backup is not None and backup.auto_prune and sess.finished is not None:
            from deploy_tasks.autoprune import auto_prune

            sess.auto_pruned = auto_prune(sess, backup)


def write_task(store: Store, *, kind: RunKind,
               build: Callable[[Index | None], Plan], dry_run: bool, json_: bool, wait: int,
               after: Callable[[Session, Plan], Record] | None = None) -> None:
    """The shape every writing task shares: plan (read-only for a dry run), apply, report."""
    from deploy.store import apply
    from deploy_tasks import actions

    # Plan read-only first: a dry run stops here, and so does a run with nothing to change
    # (the no-change fast path takes no lock and writes not even the lock's holder line).
    with store.reading() as index:
        # A run killed part way is recovered under the lock before anything is planned for
        # real: its changes' states decide what counts as a hand edit (reliability sweep).
        pending = not dry_run and index is not None and bool(index.runs.running())
        # Read before planning, so a run that ends while we plan is noticed under the lock.
        generation = index.generation() if index is not None else (0, 0, 0)
        plan = None if pending else build(index)
    if dry_run:
        assert plan is not None  # a dry run never waits for recovery
        actions.note_plan(plan)
        actions.warn_skips(plan.skips)
        if json_:
            emit_json({"run": None, "dry_run": True, "changes": plan_records(plan)})
        else:
            print_plan(plan)
        return
    if plan is not None and not plan.changes and not plan.accepts:
        actions.warn_skips(plan.skips)
        if json_:
            emit_json({"run": None, "changes": [], "recovered": []})
        else:
            print_plan(plan, diffs=False)
        return
    with writing(store, wait) as sess:
        # Plan again under the lock only if another run came between: the index is how we
        # know. A file edited meanwhile by hand is caught anyway, because every copy is
        # hashed as it is written and must match the plan's sha256.
        if plan is None or sess.recovered or sess.index.generation() != generation:
            plan = build(sess.index)
        result = apply(sess, plan, kind=kind)
        extra = after(sess, plan) if after is not None else {}
    if os.environ.get("DEPLOY_RESULT_FILE"):  # on a host, for --all-or-none
        from deploy_tasks.remote.hostenv import record_result

        record_result(result.run)
    actions.note_result(result, tree=store.tree)
    actions.warn_skips(plan.skips)
    if sess.auto_pruned is not None:
        extra = {**extra, "auto_prune": sess.auto_pruned}
    if json_:
        emit_json({"run": result.run, "changes": change_records(result),
                   "recovered": list(result.recovered), **extra})
    else:
        print_result(result, plan, store, kind=kind)
