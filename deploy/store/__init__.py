"""The centralized backup store: the tree, its index, its lock, backup naming, applying plans.

Nothing outside this package touches SQL or the tree's files. The API:

- :class:`Store` (``tree``): where the tree is; ``store.reading()`` yields the index
  read-only (or None before the first run); ``store.check_backup(row)`` re-hashes one;
- :func:`open_session` (``session``): the lock held, the index open read-write, killed
  runs recovered (``recover``); every write takes the :class:`Session` it yields:
- :func:`apply` (``apply``, ``phases``, ``preflight``, ``undo``): one plan as one run;
  a plan's accepted targets are recorded with it (``accept``), and a plan that only
  accepts is a run that writes nothing;
- :func:`migrate_files` and :func:`import_files` (``migrate``): legacy backups imported,
  verified, their originals removed when asked (``backups.create`` copies targets the same
  way); :func:`delete_backup` (``prune``).
- :func:`verify_tree` (``verify``): the tree re-hashed against its index, orphans and the
  index's own health found, the outcome recorded as the last verify;
- :func:`rebuild_index` and :func:`plan_reindex` (``reindex``, ``scan``): the index rebuilt
  from the tree's backup names, with the targets the task layer reads from the config.
- :func:`compress_backups`, :func:`compression_due`, :func:`tidy_compression`
  (``compress``): old backups stored as ``<name>.zst``, durably; ``stored`` reads either
  form; ``dedupe`` stores equal backups once, as hard links.

Every category plans its changes and hands them here; this package alone writes
backups and targets. A run follows one durable order (checked by the reliability
suite's ordering audit):

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

from typing import TYPE_CHECKING, Any

from deploy.store.accept import accept
from deploy.store.apply import apply
from deploy.store.index import ChangeRow, Index, LatestRender, RenderRow, RunRow
from deploy.store.migrate import (
    Item,
    Migration,
    import_files,
    migrate_files,
    owned_by,
    pending,
)
from deploy.store.naming import category_folder
from deploy.store.prune import delete_backup, delete_backups
from deploy.store.records import Applied, RunResult
from deploy.store.session import Session, open_session
from deploy.store.tree import INDEX_NAME, LOCK_NAME, Store, describe, now_iso, oserror

if TYPE_CHECKING:
    from deploy.store.compress import Compressed, stale_temps
    from deploy.store.compress import compress as compress_backups
    from deploy.store.compress import due as compression_due
    from deploy.store.compress import leftovers as compression_leftovers
    from deploy.store.compress import tidy as tidy_compression
    from deploy.store.reindex import Reindex, ReindexResult
    from deploy.store.reindex import plan as plan_reindex
    from deploy.store.reindex import rebuild as rebuild_index
    from deploy.store.scan import Target, Targets, Unrecorded
    from deploy.store.scan import names as reindex_names
    from deploy.store.verify import Problem, Verification, last_verify
    from deploy.store.verify import verify as verify_tree

# Loaded on first use: every run imports this package, only verify and reindex need these
# (their regexes and imports cost a deploy's no-change path some 7 ms).
_LAZY = {"Reindex": ("reindex", "Reindex"), "ReindexResult": ("reindex", "ReindexResult"),
         "plan_reindex": ("reindex", "plan"), "rebuild_index": ("reindex", "rebuild"),
         "Target": ("scan", "Target"), "Targets": ("scan", "Targets"),
         "Unrecorded": ("scan", "Unrecorded"), "reindex_names": ("scan", "names"),
         "Problem": ("verify", "Problem"), "Verification": ("verify", "Verification"),
         "last_verify": ("verify", "last_verify"), "verify_tree": ("verify", "verify"),
         "Compressed": ("compress", "Compressed"), "compress_backups": ("compress", "compress"),
         "compression_due": ("compress", "due"), "tidy_compression": ("compress", "tidy"),
         "compression_leftovers": ("compress", "leftovers"),
         "stale_temps": ("compress", "stale_temps")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

__all__ = ["INDEX_NAME", "LOCK_NAME", "Applied", "ChangeRow", "Compressed", "Index", "Item",
           "LatestRender", "Migration", "Problem", "Reindex", "ReindexResult", "RenderRow",
           "RunResult", "RunRow", "Session", "Store", "Target", "Targets", "Unrecorded",
           "Verification", "accept", "apply", "category_folder", "compress_backups",
           "compression_due", "compression_leftovers", "delete_backup", "delete_backups",
           "describe", "import_files", "last_verify", "migrate_files", "now_iso",
           "open_session", "oserror", "owned_by", "pending", "plan_reindex", "rebuild_index",
           "reindex_names", "stale_temps", "tidy_compression", "verify_tree"]
