"""When a run fails: put back what it changed, record its end truthfully, raise the error.

A second error while cleaning up never hides the first (copier's rule).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from deploy import fsio
from deploy.errors import DeployError, Interrupted
from deploy.plan import Plan
from deploy.states import ChangeState, RunState
from deploy.store.index import Index
from deploy.store.recover import settle
from deploy.store.tree import now_iso

log = logging.getLogger("deploy")


def undo_targets(index: Index, run: int, plan: Plan, backups: list[Path | None],
                 done: list[int], err: BaseException) -> None:
    """Restore the targets a failing run changed, record its end, and raise the error
    saying whether every target is back."""
    log.debug("run %d failed (%s); restoring %d target(s)", run, err, len(done))
    restored = restore(plan, backups, done)
    if restored:
        # A signal's run is recorded as interrupted (what stopped it), every change reverted.
        finish_quietly(index, run, RunState.INTERRUPTED if isinstance(err, Interrupted)
                       else RunState.FAILED, move=(ChangeState.BACKED_UP, ChangeState.REVERTED))
    else:
        finish_quietly(index, run, RunState.INTERRUPTED, settled=True)
    if isinstance(err, DeployError) and restored:
        raise err.amend(f"restored the {len(done)} target(s) already changed") from err
    if isinstance(err, DeployError):
        raise err.amend(f"could not restore every target: run `invoke rollback.release "
                        f"--run {run}`") from err


def restore(plan: Plan, backups: list[Path | None], done: list[int]) -> bool:
    """Give the changes ``done`` their old bytes back, newest first; False if one failed."""
    ok = True
    for i in reversed(done):
        change, backup = plan.changes[i], backups[i]
        log.debug("restoring %s from %s", change.target, backup or "absent")
        try:
            if backup is None:
                fsio.unlink_durably(change.target)
            else:
                assert change.old.mode is not None
                fsio.atomic_write(change.target, backup, change.old.mode, change.old.owner)
        except OSError as err:
            log.debug("could not restore %s: %s", change.target, err)
            ok = False
    return ok


def finish_quietly(index: Index, run: int, state: RunState, *,
                   move: tuple[ChangeState, ChangeState] | None = None,
                   settled: bool = False) -> None:
    """Record a run's end after a failure; a second error never hides the first."""
    try:
        with index.transaction():
            if move is not None:
                index.changes.move(run, *move)
            if settled:
                settle(index, index.changes.of_run(run))
            index.runs.finish(run, state, now_iso())
    except Exception:
        pass


def abandon(index: Index, run: int, copies: list[Path], *, interrupted: bool = False) -> None:
    """Before any target changed: remove the run's copies and record it as failed (or as
    interrupted, when a signal stopped it)."""
    for path in copies:
        try:
            os.unlink(path)
        except OSError:
            pass
    finish_quietly(index, run, RunState.INTERRUPTED if interrupted else RunState.FAILED,
                   move=(ChangeState.PLANNED, ChangeState.VOID))
