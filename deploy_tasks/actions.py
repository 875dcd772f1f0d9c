"""What a task tells GitHub Actions, and what a failing ``--json`` task still prints (issue 14).

Each task run through :class:`deploy_tasks.flags.DeployTask` opens a :class:`Report`: the
task's name, and what it did as the task layer notes it (the run, its changes, a dry run's
plan, the warnings). When it ends, whatever the outcome, a writing task under
``GITHUB_ACTIONS=true`` appends a Markdown section to ``$GITHUB_STEP_SUMMARY`` and writes
its step outputs to ``$GITHUB_OUTPUT``:

- ``run``: the run's id (empty when none), ``changed``: how many changes it made,
- ``outcome``: ``changed``, ``unchanged``, ``dry-run``, ``blocked`` (exit 3), ``failed``
  (exit 1, 2, or a signal) or ``locked`` (exit 4),
- ``undo``: the command that undoes the run (empty when nothing changed).

An error is also an ``::error file=,line=,title=TASK::`` workflow command, and a task given
``--json`` that fails prints one JSON document, ``{"error": {"message", "exit_code"}, ...}``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from deploy_tasks import common
from deploy_tasks.output import Output, hinted

if TYPE_CHECKING:
    from deploy.plan import Plan, Skip
    from deploy.provenance import Provenance
    from deploy.store import RunResult, Session

# Changes that `rollback.release --run N` undoes: they wrote (or accepted) a target. A
# backup taken by backups.create, an import by backups.migrate or reindex wrote none.
UNDOABLE = frozenset({"create", "update", "delete", "adopt"})
# A listing of more rows than this goes into a collapsed ::group:: in the Actions log.
GROUP_OVER = 10
# Skips that are news: a kept conflict, a file of the scripts folder that is not a script,
# the framework left out for want of its template. The rest are routine.
ROUTINE_SKIPS = frozenset({"unchanged", "absent", "never written", "already restored",
                           "no longer accepted"})


class Row(NamedTuple):
    action: str
    target: str
    backup: str | None
    id: int | None


class Report:
    """One task's run, as the task layer noted it."""

    def __init__(self, task: str, *, writes: bool, json_: bool, prefix: str | None) -> None:
        self.task = task
        self.writes = writes
        self.json_ = json_
        self.prefix = prefix
        self.dry_run = False
        self.run: int | None = None
        self.undoes: int | None = None
        self.rows: list[Row] = []
        self.warnings: list[str] = []
        self.session: Session | None = None
        self.emitted = False
        self.finished = False


_report: Report | None = None


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def begin(task: str, *, writes: bool, json_: bool, prefix: str | None) -> Report:
    global _report
    _report = Report(task, writes=writes, json_=json_, prefix=prefix)
    return _report


def current() -> Report | None:
    return _report


def task_name() -> str:
    """The running task's name, for annotation titles; the command's outside a task."""
    return _report.task if _report is not None else common.entry_command()


# --- what the task layer notes ------------------------------------------------------------

def note_emitted() -> None:
    if _report is not None:
        _report.emitted = True


def note_session(sess: Session) -> None:
    if _report is not None:
        _report.session = sess


def note_result(result: RunResult, *, tree: Path | None = None,
                undoes: int | None = None) -> None:
    """A finished run: its id and changes (with each backup, relative to ``tree``)."""
    if _report is None:
        return
    _report.run, _report.undoes = result.run, undoes
    rows = []
    for a in result.changes:
        backup = None
        if a.backup is not None:
            backup = str(a.backup.relative_to(tree)) if tree is not None \
                and a.backup.is_relative_to(tree) else a.backup.name
        rows.append(Row(a.action, str(a.target), backup, a.seq))
    _report.rows = rows


def note_rows(run: int | None, rows: Iterable[Row]) -> None:
    if _report is not None:
        _report.run, _report.rows = run, list(rows)


def note_plan(plan: Plan) -> None:
    """A dry run: what it would change."""
    if _report is None:
        return
    _report.dry_run = True
    _report.rows = [Row(c.action, str(c.target), None, None) for c in plan.changes]
    _report.rows += [Row("adopt", str(a.target), None, None) for a in plan.accepts]


def note_dry_run(rows: Iterable[Row] = ()) -> None:
    if _report is not None:
        _report.dry_run = True
        _report.rows = list(rows)


def warn_skips(skips: Iterable[Skip]) -> None:
    """A ``::warning`` for each skip worth a look (a kept conflict, a file that is not a
    script); only under Actions (the run's own lines already list them)."""
    for skip in skips:
        if skip.reason not in ROUTINE_SKIPS and not skip.reason.startswith("accepted"):
            warning(f"{skip.target}: skipped ({skip.reason})", printed=False)


def warning(message: str, *, printed: bool = True, file: str | None = None) -> None:
    """A warning: a ``warning:`` line on stderr (unless ``printed`` is False: the run's own
    output says it already), and under Actions a ``::warning`` command and a line of the
    step summary."""
    line = common.shown(" ".join(message.split()))
    if printed:
        common.echo(f"warning: {line}", err=True)
    if _report is not None:
        _report.warnings.append(line)
    if active():
        common.echo(annotation("warning", line, file=file or leading_path(message)), err=True)


# --- workflow commands -----------------------------------------------------------------------

def escape_data(text: str) -> str:
    """A workflow command's message, as GitHub's toolkit escapes it (``%``, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workspace_path(path: str) -> str | None:
    """``path`` relative to ``$GITHUB_WORKSPACE`` when inside it (annotations point at files
    of the repository); else None: GitHub places no annotation on a file outside it."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return None
    try:
        full = Path(os.path.abspath(path))
        base = Path(os.path.abspath(workspace))
        if not full.is_relative_to(base):
            full, base = full.resolve(), base.resolve()
        return str(full.relative_to(base)) if full.is_relative_to(base) else None
    except (OSError, ValueError):
        return None


def leading_path(message: str) -> str | None:
    """The file an error message starts with (``PATH: cause``, as every error names its
    path first), when that file exists; the longest such prefix."""
    found = None
    at = message.find(": ")
    while at > 0:
        head = message[:at]
        if os.path.isabs(head) and os.path.lexists(head):
            found = head
        at = message.find(": ", at + 1)
    return found


def annotation(kind: str, message: str, *, file: str | None = None, line: int | None = None,
               title: str | None = None) -> str:
    """``::error file=PATH,line=N,title=TASK::message``: PATH relative to the workspace."""
    props = []
    where = workspace_path(file) if file else None
    if where is not None:
        props.append(f"file={escape_property(common.shown(where))}")
        if line:
            props.append(f"line={line}")
    props.append(f"title={escape_property(title or task_name())}")
    return f"::{kind} {','.join(props)}::{escape_data(common.shown(message))}"


@contextmanager
def group(title: str, rows: int) -> Iterator[None]:
    """A listing of ``rows`` lines, folded into ``::group::`` under Actions when long."""
    folded = active() and rows > GROUP_OVER
    if folded:
        common.echo(f"::group::{escape_data(common.shown(title))}")
    try:
        yield
    finally:
        if folded:
            common.echo("::endgroup::")


# --- the end of a task ---------------------------------------------------------------------

def outcome_of(report: Report, code: int) -> str:
    if code == 3:
        return "blocked"
    if code == 4:
        return "locked"
    if code:
        return "failed"
    if report.dry_run:
        return "dry-run"
    return "changed" if report.rows else "unchanged"


def core_flags() -> list[str]:
    """The core flags of this command line (``--config FILE``, ``--search-root DIR``): what
    comes before the first task name, so a command printed for later (the undo of a run)
    finds the same tasks and config."""
    from deploy_tasks.collection import ns

    names = {name for name in ns.task_names} | {
        alias for aliases in ns.task_names.values() for alias in aliases}
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg in names:
            return args[:i]
    return []


def undo_command(report: Report) -> str:
    """The command line that undoes the report's run: this program, the core flags it was
    given (``--config FILE``, ``--search-root DIR``), ``rollback.release --run N`` and the
    task's ``--prefix``."""
    import shlex

    host = Output.host  # on a host of --hosts: the controller's command, with --hosts NAME
    argv = [host[1] if host else common.entry_command(), *core_flags(),
            "rollback.release", "--run", str(report.run)]
    if report.prefix:
        argv += ["--prefix", report.prefix]
    if host:
        argv += ["--hosts", host[0]]
    return shlex.join(argv)


def undoable(report: Report, code: int) -> bool:
    return code == 0 and not report.dry_run and report.run is not None \
        and any(r.action in UNDOABLE for r in report.rows)


def error_document(message: str, code: int, err: BaseException | None) -> dict[str, Any]:
    """What a failing ``--json`` task prints: the error, and what it knew."""
    error: dict[str, Any] = {"message": hinted(message), "exit_code": code}
    path = getattr(err, "path", None)
    if path:
        error["file"] = path
        error["line"] = getattr(err, "line", None)
    document: dict[str, Any] = {"error": error}
    if _report is not None:
        document["task"] = _report.task
        run = _report.session.run if _report.session is not None else None
        document["run"] = run if run is not None else _report.run
    problems = getattr(err, "problems", ())
    if problems:
        document["conflicts"] = [{"target": t, "problem": p} for t, p in problems]
    hunks = getattr(err, "details", None)
    if isinstance(hunks, str) and hunks:
        # A merge conflict's hunks, where its document has always had them.
        document["conflict"] = {"error": message, "hunks": hunks}
    return document


def failed(message: str, code: int, err: BaseException | None = None, *,
           json_: bool = False) -> None:
    """The end of a task that fails: its JSON error document (with ``--json``, unless it
    printed its document already), its step summary and outputs."""
    report = _report
    if (json_ or (report is not None and report.json_)) \
            and not (report is not None and report.emitted):
        common.emit_json(error_document(message, code, err))
    if report is not None and not report.finished:
        report.finished = True
        publish(report, code, message, err)


def succeeded() -> None:
    report = _report
    if report is not None and not report.finished:
        report.finished = True
        publish(report, 0)


def publish(report: Report, code: int, message: str | None = None,
            err: BaseException | None = None) -> None:
    if not active() or not report.writes:
        return
    outcome = outcome_of(report, code)
    undo = undo_command(report) if undoable(report, code) else ""
    run = report.run
    if run is None and report.session is not None:
        run = report.session.run
    # Rows of a real run are noted only once it committed: a task that fails after that
    # (a migration whose copies then fail to verify) did make them.
    made = 0 if report.dry_run else len(report.rows)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from deploy_tasks.summary import section

        text = section(report, outcome, exit_code=code, run=run, undo=undo, message=message,
                       problems=tuple(getattr(err, "problems", ())),
                       provenance=provenance_for(report))
        append(summary, text)
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        append(output, outputs({"run": "" if run is None else str(run), "changed": str(made),
                                 "outcome": outcome, "undo": undo}))


def provenance_for(report: Report) -> Provenance | None:
    return report.session.provenance if report.session is not None else None


def outputs(values: dict[str, str]) -> str:
    """``name=value`` lines; a value that could hold a line break in ``name<<DELIM`` form,
    with a delimiter that is not in it, so no value can forge another output."""
    import uuid

    lines = []
    for name, value in values.items():
        if (value.isascii() and value.replace("-", "").isalnum()) or value == "":
            lines.append(f"{name}={value}")
            continue
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        lines += [f"{name}<<{delimiter}", value, delimiter]
    return "\n".join(lines) + "\n"


def append(path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
    except OSError as err:
        # The run itself is done (or failed) already: say so, and keep its exit code.
        common.echo(f"warning: {path}: cannot append for GitHub Actions: "
                    f"{err.strerror or err}", err=True)


def provenance(config: str | None) -> Provenance:
    """Where a run comes from: under Actions ``GITHUB_SHA``, ``GITHUB_REF_NAME`` and the run's
    page; else (and for what Actions leaves unset) the checkout holding the config file."""
    from deploy.provenance import Provenance, checkout

    env = os.environ if active() else {}
    commit = env.get("GITHUB_SHA") or None
    ref = env.get("GITHUB_REF_NAME") or None
    url = None
    server, repo, run_id = (env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                                                  "GITHUB_RUN_ID"))
    if server and repo and run_id:
        url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    if (commit is None or ref is None) and config:
        head, branch = checkout(Path(config).parent)
        if commit is None:
            commit = head
        if ref is None and head is not None and commit == head:
            ref = branch
    return Provenance(commit, ref, url)
