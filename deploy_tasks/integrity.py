"""Integrity tasks (issue 13): ``backups.verify`` and ``backups.reindex``.

Thin: the checks live in ``deploy.store.verify``, the rebuild in ``deploy.store.reindex``
and ``deploy.store.scan``; the config's targets come from ``deploy.targets``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context

from deploy_tasks import actions
from deploy_tasks.common import (
    WRITE_HELP,
    Record,
    actor,
    command_line,
    config_and_store,
    echo,
    emit_json,
    guarded,
    writing,
)
from deploy_tasks.flags import task

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.store import Problem, Reindex, Store, Verification

SHOWN_PROBLEMS = 3  # problems the one error line names; stdout and --json list every one

VERIFY_HELP = {
    "sample": "re-hash only this many backups, drawn at random (for big trees; 0 = every "
              "one, the default); orphans and the index are still checked in full",
    "json_": WRITE_HELP["json_"],
    "wait": WRITE_HELP["wait"],
    "prefix": WRITE_HELP["prefix"],
}
REINDEX_HELP = {
    "force": "also over a healthy index: record only the tree's files it does not hold",
    **WRITE_HELP,
}


def escaped(path: Path | str) -> str:
    """A path as one printable line: bytes that are not UTF-8 and unprintable characters
    escaped (a file name may hold a newline)."""
    import os

    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def problem_record(problem: Problem) -> Record:
    return {"kind": problem.kind, "path": str(problem.path), "backup_id": problem.id,
            "detail": problem.detail, "message": problem.message}


def verify_record(found: Verification) -> Record:
    return {"checked": found.checked,
            "vouched": found.vouched, "sample": found.sample, "recorded": found.recorded,
            "problems": [problem_record(p) for p in found.problems]}


def print_verify(found: Verification) -> None:
    of = f" of {found.vouched} (a random sample)" if found.checked < found.vouched else ""
    echo(f"checked {found.checked}{of} backup(s): {len(found.problems) or 'no'} problem(s)")
    for p in found.problems:
        row = f" (id {p.id})" if p.id is not None else ""
        echo(f"  {p.kind:<8} {escaped(p.path)}{row}: {escaped(p.detail)}")
    kinds = found.kinds()
    if "index" in kinds:
        echo("hint: `invoke backups.reindex` rebuilds the index from the tree")
    elif "orphan" in kinds:
        echo("hint: `invoke backups.reindex --force` records each orphan whose name and "
              "target it can tell")


def summary(problems: tuple[Problem, ...]) -> str:
    """The one error line: the first problems' messages, and how many more there are."""
    shown = "; ".join(p.message for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f"; and {more} more problem(s), each listed on stdout" if more > 0 else "")


@task(help=VERIFY_HELP)
@guarded
def verify(c: Context, sample: int = 0, json_: bool = False, wait: int = 0,
           prefix: str | None = None) -> None:
    """Re-hash every backup against the index; find orphans and a missing or corrupt index.

    Exit 1 naming each problem. Over a healthy index it holds the lock (--wait) and records
    its outcome in the index as the last verify.
    """
    from deploy.errors import ConfigError, IntegrityError
    from deploy.store import verify_tree

    _cfg, store = config_and_store(prefix)
    if sample < 0:
        raise ConfigError(f"--sample {sample}: give a number of backups, or 0 for every one")
    found = verify_tree(store, sample=sample or None, session=lambda: writing(store, wait))
    if json_:
        emit_json(verify_record(found))
    else:
        print_verify(found)
    if found.problems:
        raise IntegrityError(summary(found.problems))


def reindex_record(store: Store, plan: Reindex, run: int | None, seqs: list[int | None],
                   *, dry_run: bool, recovered: tuple[int, ...] = ()) -> Record:
    return {"run": run, "dry_run": dry_run,
            "index": plan.health.state,
            "moved_aside": str(plan.aside) if plan.aside else None,
            "changes": [{"category": e.category, "target": str(e.target), "action": "import",
                         "backup": str(e.backup), "key": e.key, "change": seq,
                         "backup_id": seq, "sha256": e.sha256,
                         "size": e.size, "created": e.created}
                        for e, seq in zip(plan.entries, seqs, strict=True)],
            "unrecorded": [{"path": str(u.path), "reason": u.reason} for u in plan.unrecorded],
            "recovered": list(recovered)}


def print_reindex(store: Store, plan: Reindex, run: int | None, seqs: list[int | None],
                  *, dry_run: bool) -> None:
    if plan.aside is not None:
        verb = "would move" if dry_run else "moved"
        echo(f"{verb} the corrupt index ({escaped(plan.health.detail)}) aside to "
              f"{escaped(plan.aside)}")
    if dry_run:
        head = f"would record {len(plan.entries)} backup(s) in one reindex run"
    elif run is None:
        head = "nothing to record" + ("" if plan.unrecorded else
                                      ": the index holds every file of the tree")
    else:
        head = f"run {run}: reindex, {len(plan.entries)} backup(s) recorded"
    echo(head)
    for e, seq in zip(plan.entries, seqs, strict=True):
        verb = "would record" if dry_run else "recorded"
        ident = f", id {seq}" if seq is not None else ""
        echo(f"  {verb}  {escaped(e.backup.relative_to(store.tree))}  (for "
              f"{escaped(e.target)}{ident})")
    for u in plan.unrecorded:
        echo(f"  cannot record  {escaped(u.path.relative_to(store.tree))}: {escaped(u.reason)}")
    if plan.unrecorded:
        echo(f"{len(plan.unrecorded)} file(s) not recorded: rollbacks cannot restore them; "
              "each holds its old bytes, so cp restores it by hand")


@task(help=REINDEX_HELP)
@guarded
def reindex(c: Context, force: bool = False, dry_run: bool = False, json_: bool = False,
            wait: int = 0, prefix: str | None = None) -> None:
    """Rebuild the index from the tree after it was lost or corrupted (a corrupt one is
    moved aside into the state dir); refused over a healthy index unless --force.

    Each backup whose name parses and whose target the config tells is recorded as an
    imported backup of one reindex run: listed, verified, restorable with
    rollback.<category> --to ID, never picked by a step-back rollback.
    """
    from deploy.store import RunResult, plan_reindex, rebuild_index, reindex_names
    from deploy.targets import targets

    cfg, store = config_and_store(prefix)
    owners = targets(cfg, reindex_names(store)) if store.check_trust() else {}
    if dry_run:
        plan = plan_reindex(store, owners, force=force)
        actions.note_dry_run(actions.Row("import", str(e.target), None, None)
                             for e in plan.entries)
        seqs: list[int | None] = [None] * len(plan.entries)
        run: int | None = None
        recovered: tuple[int, ...] = ()
    else:
        result = rebuild_index(store, owners, command=command_line(), actor=actor(),
                               wait=wait, force=force,
                               provenance=actions.provenance(store.project))
        actions.note_result(RunResult(result.run, result.changes), tree=store.tree)
        plan, run, recovered = result.plan, result.run, result.recovered
        seqs = [a.seq for a in result.changes]
    if json_:
        emit_json(reindex_record(store, plan, run, seqs, dry_run=dry_run, recovered=recovered))
    else:
        for killed in recovered:
            echo(f"note: run {killed} was killed part way; recorded as interrupted")
        print_reindex(store, plan, run, seqs, dry_run=dry_run)
