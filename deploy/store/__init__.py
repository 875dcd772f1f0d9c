"""The centralized backup store: the tree, its index, its lock, and applying plans.

``tree`` holds the tree and its records, ``session`` what a lock holder does
(recover, apply, migrate, prune), ``phases`` the batched write phases of a run.

Every category plans its changes and hands them here; this module alone
writes backups and targets. A run follows one durable order (checked by the
reliability suite's ordering audit):

1. commit the run and its planned changes to the index;
2. copy each target's old bytes to its backup (temp file, fsync, rename) and
   fsync the backup folders;
3. commit "backed up";
4. write each target (temp file, fsync, rename) and fsync the target folders;
5. commit "applied" and the run's end state.

A failure in 4 restores what the run already changed from its backups and
records the run as failed. A run killed part way is found by the next
session, which records it as ``interrupted``: each of its targets holds the old
or the new bytes, and its backups let it be rolled back like any run.
"""


from deploy.store.session import Session
from deploy.store.tree import (
    BATCH,
    CATEGORIES,
    FOLDERS,
    INDEX_NAME,
    LOCK_NAME,
    Applied,
    RunResult,
    Store,
    describe,
    now_iso,
    oserror,
)

__all__ = ["BATCH", "CATEGORIES", "FOLDERS", "INDEX_NAME", "LOCK_NAME", "Applied", "RunResult",
           "Session", "Store", "describe", "now_iso", "oserror"]
