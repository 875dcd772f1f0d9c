"""A session: the lock held, the index open read-write, killed runs recovered.

Everything that writes the tree takes one: ``apply`` (a run), ``import_files``
(a migration) and ``delete_backup`` (pruning) each take the session they run in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from deploy.store import lock
from deploy.store.index import Index
from deploy.store.recover import recover
from deploy.store.tree import Store, now_iso

if TYPE_CHECKING:
    from deploy.plan import Change


class Session:
    """What a lock holder works with: the store, its index, and who is running."""

    def __init__(self, store: Store, index: Index, *, command: str, actor: str) -> None:
        self.store = store
        self.index = index
        self.command = command
        self.actor = actor
        # Runs a kill had left ``running``, recorded as interrupted when the session opened.
        self.recovered: tuple[int, ...] = ()
        # The clock that names backups (local time); tests freeze it to force collisions.
        self.clock: Callable[[], datetime] = datetime.now
        # Test hook for the fault-injection suite: called before each target write.
        self.before_target: Callable[[int, Change], None] | None = None


@contextmanager
def open_session(store: Store, *, command: str, actor: str,
                 wait: float = 0) -> Iterator[Session]:
    """Take the lock, open the index, record killed runs as interrupted, then yield."""
    store.ensure_tree()
    with lock.hold(store.lock_path, command=command, started=now_iso(), wait=wait):
        index = Index(store.index_path)
        try:
            sess = Session(store, index, command=command, actor=actor)
            sess.recovered = recover(store, index)
            yield sess
        finally:
            index.close()
