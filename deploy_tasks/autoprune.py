"""``backup.auto_prune`` (issue 13): retention applied at the end of every writing run.

``common.config_and_store`` notes each store's retention settings here; ``common.writing``
looks them up when its session recorded a run, and calls :func:`auto_prune` before the lock
is let go. So every writing task gets it, without each having to pass its settings on.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy.config import BackupSettings
    from deploy.store import Session, Store

# The retention settings of each store a task opened through config_and_store.
RETENTION: weakref.WeakKeyDictionary[Store, BackupSettings] = weakref.WeakKeyDictionary()


def warn(message: str) -> None:
    """One ``warning:`` line on stderr; under GitHub Actions also a ``::warning::`` line."""
    import os

    from deploy_tasks.common import echo, shown

    line = shown(message.strip())
    echo(f"warning: {line}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        echo(f"::warning title=deploy::{line.replace('%', '%25')}", err=True)


def auto_prune(sess: Session, backup: BackupSettings) -> dict[str, Any]:
    """Retention in the session of a run that finished, under its lock. A failure is
    reported as a warning and leaves the run done: exit 0 (the run the user asked for is
    done and recorded so; a prune that fails removes nothing kept, and the next prune
    retries). A signal still ends the command as interrupted, saying the run stays done."""
    from deploy import retention
    from deploy.errors import DeployError, Interrupted
    from deploy_tasks.common import echo

    try:
        pruned = retention.prune(sess, backup)
    except Interrupted as err:
        raise Interrupted(f"{err}; run {sess.finished} had finished and stays done (undo it "
                          f"with `invoke rollback.release --run {sess.finished}`)",
                          err.signum) from None
    except (DeployError, OSError) as err:
        text = str(err) if isinstance(err, DeployError) \
            else f"{err.filename or '?'}: {err.strerror or err}"
        warn(f"run {sess.finished} is done and stays done, but auto_prune failed after it: "
             f"{text}; nothing kept was removed; retry with `invoke backups.prune`")
        return {"removed": [], "error": text}
    removed = [row.seq for row in pruned.removed]
    if removed:
        echo(f"note: auto_prune removed {len(removed)} backup(s) "
             f"({', '.join(map(str, removed[:10]))}{' ...' if len(removed) > 10 else ''}); "
             "see `invoke backups.prune --dry-run` for every verdict", err=True)
    for skipped in (d for d in pruned.compressed if d.outcome == "skipped"):
        warn(f"{skipped.path}: {skipped.detail}")
    done: dict[str, Any] = {"removed": removed, "error": None}
    if backup.compression_enabled:  # what it compressed, as <name>.zst
        done["compressed"] = [d.row.seq for d in pruned.compressed if d.outcome != "skipped"]
    return done
