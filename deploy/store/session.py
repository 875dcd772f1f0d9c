"""A session: the lock held, the index open read-write, killed runs recovered.

Everything that writes the tree takes one: ``apply`` (a run), ``import_files``
(a migration) and ``delete_backup`` (pruning) each take the session they run in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from deploy.store import lock
from deploy.store.index import Index
from deploy.store.prune import finish_pending
from deploy.store.recover import recover
from deploy.store.signals import Deferral, deferred
from deploy.store.tree import Store, now_iso

if TYPE_CHECKING:
    from deploy.plan import Change
    from deploy.provenance import Provenance


class Session:
    """What a lock holder works with: the store, its index, and who is running."""

    def __init__(self, store: Store, index: Index, *, command: str, actor: str,
                 signals: Deferral | None = None, provenance: Provenance | None = None) -> None:
        self.store = store
        self.index = index
        self.command = command
        self.actor = actor
        # Where the runs of this session come from (commit, ref, CI run), recorded with each.
        self.provenance = provenance
        # The run this session opened last (its id is known once its row is committed), so
        # that a failure after it can still name it (``--json``'s error document).
        self.run: int | None = None
        # Runs a kill had left ``running``, recorded as interrupted when the session opened.
        self.recovered: tuple[int, ...] = ()
        # The clock that names backups (local time); tests freeze it to force collisions.
        self.clock: Callable[[], datetime] = datetime.now
        # Test hook for the fault-injection suite: called before each target write.
        self.before_target: Callable[[int, Change], None] | None = None
        # SIGINT, SIGTERM and SIGHUP noted while the session holds the lock (``signals``).
        self.signals = signals or Deferral()
        # The last run this session finished, for the message of a signal that came after.
        self.finished: int | None = None
        # Rows a killed prune had left pending, finished when the session opened.
        self.prunes_finished = 0
        # What backup.auto_prune did after this session's run (set by the task layer).
        self.auto_pruned: dict[str, Any] | None = None
        # Equal backups stored once, as hard links (``dedupe``); off only for the bench's
        # side-by-side figures.
        self.dedupe = True


@contextmanager
def open_session(store: Store, *, command: str, actor: str, wait: float = 0,
                 provenance: Provenance | None = None) -> Iterator[Session]:
    """Take the lock, open the index, record killed runs as interrupted, then yield.

    Once the lock is held, SIGINT, SIGTERM and SIGHUP are deferred (``signals``): the
    writers check for one where nothing is half done, and one that came after the last
    check is raised here, when the session ends.
    """
    store.ensure_tree()
    with lock.hold(store.lock_path, command=command, started=now_iso(), wait=wait), \
            deferred() as signals:
        index = Index(store.index_path)
        try:
            sess = Session(store, index, command=command, actor=actor, signals=signals,
                           provenance=provenance)
            sess.recovered = recover(store, index)
            sess.prunes_finished = finish_pending(store, index)
            yield sess
        finally:
            index.close()
        signals.check(f"run {sess.finished} had finished and stays done; undo it with "
                      f"`invoke rollback.release --run {sess.finished}`"
                      if sess.finished is not None else "nothing was changed")
