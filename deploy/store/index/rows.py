"""The index's records, and the SQL conditions that name a state once."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from deploy.states import HOLDS_BACKUP, LIVE, UNDOABLE_RUNS, Action, ChangeState, RunState

ZST = ".zst"  # a compressed backup is ``<contract name>.zst`` (contract)


class RunRow(NamedTuple):
    id: int
    kind: str
    actor: str
    command: str
    pid: int
    started: str
    finished: str | None
    state: str
    undoes: int | None
    categories: str
    project: str | None = None  # None: recorded before runs named their project
    git_commit: str | None = None  # where the run came from; None when unknown (or older)
    git_ref: str | None = None
    ci_url: str | None = None
    kept: int | None = None     # 1: history.keep marked it; prune never removes its backups


class ChangeRow(NamedTuple):
    seq: int
    run: int
    category: str
    key: str
    target: str
    action: str
    backup: str | None
    old_sha256: str | None
    old_size: int | None
    old_mode: int | None
    new_sha256: str | None
    new_size: int | None
    new_mode: int | None
    created: str
    created_ts: float
    state: str
    undone_by: int | None
    reverts: int | None
    pruned: int
    old_uid: int | None = None
    old_gid: int | None = None
    compressed: int | None = None   # 1: stored as ``<backup>.zst``
    stored_size: int | None = None  # bytes on disk (None: old_size)
    blob: int | None = None         # the row whose write made the inode (None: this one)

    @property
    def stored(self) -> str | None:
        """The backup's file as it lies in the tree, relative to it."""
        if self.backup is None:
            return None
        return self.backup + ZST if self.compressed else self.backup

    @property
    def old_owner(self) -> tuple[int, int] | None:
        if self.old_uid is None or self.old_gid is None:
            return None
        return self.old_uid, self.old_gid


class RenderRow(NamedTuple):
    id: int
    change_seq: int
    category: str
    key: str
    n: int
    template_sha256: str
    output_sha256: str


class LatestRender(NamedTuple):
    """A key's newest render; ``change_seq`` is None when the key was never rendered."""

    change_seq: int | None
    template_sha256: str
    context_sha256: str
    output_sha256: str
    output: bytes

    def hit(self, template_sha256: str, context_sha256: str) -> bytes | None:
        """The output, if it came from this template and context and still verifies."""
        if self.change_seq is None or not self.context_sha256 \
                or (self.template_sha256, self.context_sha256) != (template_sha256,
                                                                   context_sha256):
            return None
        ok = hashlib.sha256(self.output).hexdigest() == self.output_sha256
        return self.output if ok else None


NO_RENDER = LatestRender(None, "", "", "", b"")
CHANGE_COLS = ", ".join(ChangeRow._fields)
RENDER_COLS = ", ".join(RenderRow._fields)


def _among(column: str, states: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(s)) for s in states)})"


# Each condition written once: the queries compose them.
IS_LIVE = _among("state", LIVE)
IS_LIVE_C = _among("c.state", LIVE)
HAS_BACKUP = f"backup IS NOT NULL AND pruned = 0 AND {_among('state', HOLDS_BACKUP)}"
RUN_UNDOABLE = _among("r.state", UNDOABLE_RUNS)
RUNNING = f"state = '{RunState.RUNNING}'"
# An accepted target's row (``templates.adopt``, a kept conflict): it wrote nothing.
WROTE = f"action != '{Action.ADOPT}'"
WROTE_C = f"c.action != '{Action.ADOPT}'"
IMPORTED = f"state = '{ChangeState.IMPORTED}'"
# A project's runs, and those recorded before runs named their project.
OF_PROJECT = "(project = ? OR project IS NULL)"
OF_PROJECT_R = "(r.project = ? OR r.project IS NULL)"
RUN_OF_PROJECT = f"run IN (SELECT id FROM runs WHERE {OF_PROJECT})"
