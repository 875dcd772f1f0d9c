"""The index's vocabulary: run kinds, run states, change states and actions, named once.

They are ``StrEnum``s, so they are stored, printed and compared as the plain
strings the contract and ``history --json`` show (``done``, ``applied`` ...).
"""

from __future__ import annotations

from enum import StrEnum


class RunKind(StrEnum):
    DEPLOY = "deploy"
    BUMP = "bump"
    ROLLBACK = "rollback"
    MIGRATE = "migrate"
    BACKUP = "backup"  # backups.create: copies of targets as they are, no target written
    ADOPT = "adopt"          # templates.adopt: hand edits accepted, nothing written
    REINDEX = "reindex"  # backups.reindex: the tree's files recorded into a rebuilt index


class RunState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNDONE = "undone"


class ChangeState(StrEnum):
    """Where one change stands; the store moves it forward in the durable order."""

    PLANNED = "planned"      # recorded, nothing copied yet
    BACKED_UP = "backed_up"  # its backup is durable; the target may hold the new bytes
    APPLIED = "applied"      # the target holds the new bytes, and the run said so
    VOID = "void"            # never reached: the run failed or was killed before its backup
    REVERTED = "reverted"    # the target was given its old bytes back
    IMPORTED = "imported"    # a legacy backup copied into the tree, or a file reindexed
                             # from it (no target written)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    IMPORT = "import"
    BACKUP = "backup"
    ADOPT = "adopt"    # the target's bytes accepted as ours (no write, no backup)


# A change that left its new bytes in its target (failed runs restored theirs).
LIVE = (ChangeState.APPLIED, ChangeState.BACKED_UP)
# A change whose backup file is one to keep, list and restore.
HOLDS_BACKUP = (*LIVE, ChangeState.REVERTED, ChangeState.IMPORTED)
# A finished run a step-back rollback may undo.
UNDOABLE_RUNS = (RunState.DONE, RunState.INTERRUPTED)
