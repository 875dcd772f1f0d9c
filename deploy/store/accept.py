"""Accepting rendered targets as they are: their bytes recorded as ours, nothing written.

A conflict settled without a write (``--on-conflict keep``, a merge the target already
holds, ``templates.adopt``) is one change row per target: action ``adopt``, state
``applied``, old and new sha256 both the bytes the target holds, no backup. So
``changes.last_write`` finds those bytes, and the next deploy sees a conflict only when
the file changes again. The row's render is the merge base of later template changes:
the render the accepted bytes derive from (``deploy.conflict`` chooses it).

No backup is taken: the target does not change, and rolling the run back writes nothing
either (``deploy.rollback`` only withdraws the acceptance). The rows are committed in one
transaction with the run's end, after a check that each target still holds the bytes
that were planned: a file edited meanwhile is not accepted unseen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from deploy import fsio
from deploy.errors import WriteFailed
from deploy.plan import Accept, Plan
from deploy.states import Action, ChangeState, RunKind, RunState
from deploy.store.index import Index
from deploy.store.records import Applied, RunResult
from deploy.store.session import Session
from deploy.store.tree import now_iso, oserror


def record(index: Index, run: int, accepts: Iterable[Accept], created: str) -> list[Applied]:
    """Inside a transaction: one ``adopt`` row and its base render per accepted target."""
    done = []
    for item in accepts:
        try:
            now = fsio.read_state(item.target)
        except OSError as err:
            raise oserror("reading", item.target, err) from err
        if (now.sha256, now.mode) != (item.current.sha256, item.current.mode):
            raise WriteFailed(f"{item.target}: changed while being accepted; nothing was "
                              "recorded: run again")
        seq = index.changes.add(
            run=run, category=item.category, key=item.key, target=str(item.target),
            action=Action.ADOPT, backup=None, old_sha256=now.sha256, old_size=now.size,
            old_mode=now.mode, old_owner=now.owner, new_sha256=now.sha256,
            new_size=now.size, new_mode=now.mode, created=created, created_ts=time.time(),
            state=ChangeState.APPLIED)
        base = item.render
        index.renders.add(seq, item.category, item.key, base.template_sha256,
                          fsio.sha256_bytes(base.output), base.output, base.context_sha256)
        if base.code is not None:
            index.renders.put_code(*base.code)
        done.append(Applied(item.category, item.key, item.target, Action.ADOPT, None, seq))
    return done


def accept(sess: Session, plan: Plan, *, kind: RunKind) -> RunResult:
    """A run that only accepts ``plan.accepts`` (a deploy that only keeps,
    ``templates.adopt``): one commit, nothing written."""
    if not plan.accepts:
        return RunResult(None, (), sess.recovered)
    index = sess.index
    sess.signals.check("nothing was changed")
    started = now_iso()
    with index.transaction():
        run = index.runs.add(kind, sess.actor, sess.command, os.getpid(), started,
                             {a.category for a in plan.accepts}, project=sess.store.project,
                             provenance=sess.provenance)
        sess.run = run
        done = record(index, run, plan.accepts, started)
        index.runs.finish(run, RunState.DONE, now_iso())
    sess.finished = run
    return RunResult(run, tuple(done), sess.recovered)
