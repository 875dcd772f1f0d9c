"""Integrity tasks (issue 13): ``backups.verify``.

Thin: the checks live in ``deploy.store.verify``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context, task

from deploy_tasks.common import (
    WRITE_HELP,
    Record,
    config_and_store,
    emit_json,
    guarded,
    writing,
)

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.store import Problem, Verification

SCHEMA_VERSION = 1
SHOWN_PROBLEMS = 3  # problems the one error line names; stdout and --json list every one

VERIFY_HELP = {
    "sample": "re-hash only this many backups, drawn at random (for big trees; 0 = every "
              "one, the default); orphans and the index are still checked in full",
    "json_": WRITE_HELP["json_"],
    "wait": WRITE_HELP["wait"],
    "prefix": WRITE_HELP["prefix"],
}


def escaped(path: Path | str) -> str:
    """A path as one printable line: bytes that are not UTF-8 and unprintable characters
    escaped (a file name may hold a newline)."""
    import os

    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def problem_record(problem: Problem) -> Record:
    return {"kind": problem.kind, "path": str(problem.path), "id": problem.id,
            "detail": problem.detail, "message": problem.message}


def verify_record(found: Verification) -> Record:
    return {"schema_version": SCHEMA_VERSION, "checked": found.checked,
            "vouched": found.vouched, "sample": found.sample, "recorded": found.recorded,
            "problems": [problem_record(p) for p in found.problems]}


def print_verify(found: Verification) -> None:
    of = f" of {found.vouched} (a random sample)" if found.checked < found.vouched else ""
    print(f"checked {found.checked}{of} backup(s): {len(found.problems) or 'no'} problem(s)")
    for p in found.problems:
        row = f" (id {p.id})" if p.id is not None else ""
        print(f"  {p.kind:<8} {escaped(p.path)}{row}: {escaped(p.detail)}")
    kinds = found.kinds()
    if "index" in kinds:
        print("hint: `invoke backups.reindex` rebuilds the index from the tree")
    elif "orphan" in kinds:
        print("hint: `invoke backups.reindex --force` records each orphan whose name and "
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
