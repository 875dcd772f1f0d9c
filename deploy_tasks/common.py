"""Shared task plumbing: configuration, error mapping, plan and run output."""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from invoke.exceptions import Exit

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


def config_path() -> Path:
    return _locate_config()


def settings(prefix: str | None = None) -> Config:
    from deploy.config import load

    staged = prefix or os.environ.get("DEPLOY_PREFIX") or None
    return load(config_path(), prefix=Path(staged).resolve() if staged else None)


def config_and_store(prefix: str | None = None) -> tuple[Config, Store]:
    """The configuration and its backup store: where every task that reads the tree starts."""
    from deploy.store import Store

    cfg = settings(prefix)
    return cfg, Store(cfg.state_dir, project=str(cfg.path))


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


# What a name or path must not carry onto a terminal or into a CI log: C0 and C1 controls and
# DEL (a newline could forge an `error:` line or a `::error::` workflow command, an ESC a
# terminal sequence), the other characters str.splitlines() breaks at (U+2028, U+2029), the
# bidirectional controls that reorder what is shown, and lone surrogates: the bytes of a
# non-UTF-8 file name, which os.fsdecode() keeps as U+DC80..U+DCFF (surrogateescape).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                    "\ud800-\udfff]")
NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in NAMED_ESCAPES:
        return NAMED_ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte the file name really holds
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as text safe to show on one line: every character of :data:`UNSAFE` escaped
    (``\\n``, ``\\t``, ``\\x1b``, ``\\u2028``; a non-UTF-8 byte of a path as ``\\xff``).
    Everything printed from a name or path goes through here (issue 11)."""
    return UNSAFE.sub(_escape, str(value))


def _encodable(text: str, stream: Any) -> str:
    """``text`` as ``stream`` can encode it (``PYTHONIOENCODING=ascii``: ``\\xe9`` for é), so
    that a run recorded done never ends in UnicodeEncodeError while it reports."""
    encoding = getattr(stream, "encoding", None)
    if not encoding or text.isascii() or codecs.lookup(encoding).name == "utf-8":
        return text
    return text.encode(encoding, "backslashreplace").decode(encoding)


class Output:
    """How this command prints: ``--quiet`` (only the summary line of a run) and the
    progress line on a terminal (``deploy_tasks.progress``), which goes before any line."""

    quiet = False
    progress: Any = None  # a deploy_tasks.progress.Terminal while one is drawing


def _clear_progress() -> None:
    if Output.progress is not None:
        Output.progress.clear()


# A hint names the command to type (`invoke templates.adopt`); the package writes `invoke`,
# and the installed command says its own name instead.
HINT = re.compile(r"(?<=[`(])invoke (?=[a-z])")


def hinted(line: str) -> str:
    """``line`` with each `` `invoke TASK`` hint naming the command that runs (issue 12)."""
    if _command == "invoke" or "invoke " not in line:
        return line
    return HINT.sub(f"{_command} ", line)


def echo(line: str = "", *, err: bool = False) -> None:
    """Print one line, escaped (:func:`shown`): every line the tasks print goes through here,
    or through :func:`write_text` for text that is not a name (diff hunks)."""
    _clear_progress()
    line = hinted(line)
    stream = sys.stderr if err else sys.stdout
    print(_encodable(shown(line), stream), file=stream)


def write_text(text: str) -> None:
    """Write file content (a diff's hunks, a merge conflict's) to stdout as it is, but in
    what stdout can encode."""
    _clear_progress()
    sys.stdout.write(_encodable(text, sys.stdout))


def report_error(message: str) -> None:
    line = shown(hinted(message.strip()))
    echo(f"error: {line}", err=True)
    if _github():
        # Workflow command data escapes %, CR and LF; shown() left no CR or LF.
        echo(f"::error title=deploy::{line.replace('%', '%25')}", err=True)


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
            _clear_progress()
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
        try:
            return fn(*args, **kwargs)
        except DeployError as err:
            report_error(str(err))
            raise Exit(code=err.exit_code) from None
        except OSError as err:
            where = err.filename or "?"
            report_error(f"{where}: {err.strerror or err}")
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            report_error("interrupted")
            raise Exit(code=130) from None
        except Exception as err:
            # Last resort: a bug of ours still ends in one line, not a traceback, unless
            # DEPLOY_DEBUG asks for it. The reliability suite flags such lines: they name no
            # path.
            if os.environ.get("DEPLOY_DEBUG"):
                raise
            report_error(f"unexpected {type(err).__name__}: {err} "
                         "(set DEPLOY_DEBUG=1 for the traceback)")
            raise Exit(code=1) from None

    return wrapper


def emit_json(document: Record) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_plan(plan: Plan, *, diffs: bool = True) -> None:
    from deploy.plan import unified_diff

    if Output.quiet:
        unchanged = sum(1 for s in plan.skips if s.reason == "unchanged")
        echo(f"would change {len(plan.changes)} target(s), {unchanged} unchanged"
             if plan.changes else "nothing to do: every target is up to date")
        return
    if not plan.changes:
        echo("nothing to do: every target is up to date")
    for change in plan.changes:
        extra = f" ({change.note})" if change.note else ""
        echo(f"would {change.action:<7} {change.target}{extra}")
        if diffs:
            # The hunks are the file's own lines, each behind its +, - or space; the paths
            # in the header are names, escaped.
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


def plan_records(plan: Plan) -> list[Record]:
    """A plan's changes as the ``changes`` of a dry run's JSON (nothing is backed up yet)."""
    return [{"category": c.category, "target": str(c.target), "action": c.action,
             "backup": None} for c in plan.changes]


def change_records(result: RunResult, *, ids: bool = True) -> list[Record]:
    """A run's changes as the ``changes`` of its JSON; with ``ids``, also each change's key
    and index id (``seq``). ``backups.migrate`` has always printed its records without."""
    records: list[Record] = []
    for a in result.changes:
        record: Record = {"category": a.category, "target": str(a.target), "action": a.action,
                          "backup": str(a.backup) if a.backup else None}
        if ids:
            record |= {"key": a.key, "seq": a.seq}
        records.append(record)
    return records


def print_result(result: RunResult, plan: Plan, store: Store, *, kind: RunKind) -> None:
    for run in result.recovered:
        echo(f"note: run {run} was killed part way; recorded as interrupted")
    if result.run is None and not result.changes:
        echo("nothing to do: every target is up to date")
    else:
        echo(f"run {result.run}: {kind}, {len(result.changes)} change(s)")
    if Output.quiet:
        return
    for applied in result.changes:
        backup = f"backup {applied.backup.relative_to(store.tree)}" if applied.backup \
            else "as it is, nothing written" if applied.action == "adopt" else "was absent"
        echo(f"  {ACTION_PAST[applied.action]:<8} {applied.target}  ({backup}, id {applied.seq})")
    skipped = [s for s in plan.skips if s.reason != "unchanged"]
    for skip in skipped:
        echo(f"  skipped  {skip.target} ({skip.reason})")
    unchanged = len(plan.skips) - len(skipped)
    if unchanged:
        echo(f"  {unchanged} target(s) unchanged")


def _cell(value: object) -> str:
    """Text for a Markdown table cell: escaped (:func:`shown`), its pipes too."""
    return shown(value).replace("|", "\\|")


def _code(value: object) -> str:
    """A name as Markdown code in a table cell; a backtick in it takes a longer fence."""
    text = _cell(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def step_summary(title: str, result: RunResult) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not _github() or not path:
        return
    lines = [f"### {_cell(title)}: run {result.run}", "", "| action | target | backup |",
             "|---|---|---|"]
    for a in result.changes:
        lines.append(f"| {a.action} | {_code(a.target)} | "
                     f"{_code(a.backup.name if a.backup else '-')} |")
    if not result.changes:
        lines.append("| - | nothing changed | - |")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n")


@contextmanager
def writing(store: Store, wait: int) -> Iterator[Session]:
    """A session on ``store`` for this command line: its lock held (waiting ``wait`` s)."""
    from deploy.store import open_session

    with open_session(store, command=command_line(), actor=actor(), wait=wait) as sess:
        yield sess


def write_task(store: Store, *, kind: RunKind, title: str,
               build: Callable[[Index | None], Plan], dry_run: bool, json_: bool, wait: int,
               after: Callable[[Session, Plan], Record] | None = None) -> None:
    """The shape every writing task shares: plan (read-only for a dry run), apply, report."""
    from deploy.store import apply

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
        if json_:
            emit_json({"run": None, "dry_run": True, "changes": plan_records(plan)})
        else:
            print_plan(plan)
        return
    if plan is not None and not plan.changes and not plan.accepts:
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
    step_summary(title, result)
    if json_:
        emit_json({"run": result.run, "changes": change_records(result),
                   "recovered": list(result.recovered), **extra})
    else:
        print_result(result, plan, store, kind=kind)
