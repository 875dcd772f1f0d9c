"""In-process fault injection: make the N-th call at one site raise, once or from then on.

Sites are the write-side calls the store makes (``os.write``, ``os.fsync``, ...), the
copy routine (``deploy.fsio.stage``, or ``write_temp`` before it), and the index commit.
The commit is failed the way SQLite fails it: a proxy around the connection makes the
N-th ``COMMIT`` raise ``sqlite3.OperationalError``, so ``Index.transaction``'s own error path runs.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ERRNOS = (errno.ENOSPC, errno.EIO, errno.EACCES, errno.EROFS)
# What SQLite says for each errno (its own wording, as the index would report it).
SQLITE_WORDS = {
    errno.ENOSPC: "database or disk is full",
    errno.EIO: "disk I/O error",
    errno.EACCES: "access permission denied",
    errno.EROFS: "attempt to write a readonly database",
}

def copy_routine() -> str:
    """The store's copy routine: ``fsio.stage`` (batched writes) or, before it, ``write_temp``."""
    from deploy import fsio

    return "fsio.stage" if hasattr(fsio, "stage") else "fsio.write_temp"


COPY = copy_routine()
SITES = ("os.write", "os.fsync", "os.replace", "os.link", "os.unlink", "os.mkdir", COPY,
         "index.commit")
# The default run covers every site with one errno (the full cross product is slow).
DEFAULT_ERRNO = {
    "os.write": errno.ENOSPC, "os.fsync": errno.EIO, "os.replace": errno.EACCES,
    "os.link": errno.EROFS, "os.unlink": errno.EACCES, "os.mkdir": errno.EROFS,
    COPY: errno.ENOSPC, "index.commit": errno.EIO,
}
# A failure at these sites must fail the run: a swallowed failed fsync reported as success
# is the classic durability bug. Unlink and mkdir failures may be harmless (cleanup, EEXIST).
MUST_FAIL = {"os.write", "os.fsync", "os.replace", COPY, "index.commit"}


def cause_words(site: str, code: int) -> tuple[str, ...]:
    """What the error line must say about the cause."""
    words = [os.strerror(code)]
    if site == "index.commit":
        words.append(SQLITE_WORDS[code])
    return tuple(words)


class Injector:
    """Counts calls at ``site``; the ``n``-th (and with ``persistent`` every later one) fails."""

    def __init__(self, site: str, n: int, code: int, *, persistent: bool = False) -> None:
        if site not in SITES:
            raise ValueError(site)
        self.site, self.n, self.code, self.persistent = site, n, code, persistent
        self.calls = 0
        self.fired = 0

    def hit(self) -> bool:
        self.calls += 1
        if self.calls == self.n or (self.persistent and self.calls > self.n):
            self.fired += 1
            return True
        return False

    def error(self, *args: Any) -> OSError:
        name = next((a for a in args if isinstance(a, str | os.PathLike)), None)
        return OSError(self.code, os.strerror(self.code), *([os.fspath(name)] if name else []))

    def _wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            if self.hit():
                raise self.error(*args)
            return real(*args, **kwargs)

        return faulty

    @contextmanager
    def active(self) -> Iterator[Injector]:
        from deploy import fsio
        from deploy.store.index import Index

        if self.site == "index.commit":
            real_init = Index.__init__
            injector = self

            def init(index: Index, *args: Any, **kwargs: Any) -> None:
                real_init(index, *args, **kwargs)
                index.db = FaultyConnection(index.db, injector)  # type: ignore[assignment]

            Index.__init__ = init  # type: ignore[method-assign]
            try:
                yield self
            finally:
                Index.__init__ = real_init  # type: ignore[method-assign]
            return
        owner: Any = fsio if self.site.startswith("fsio.") else os
        attr = self.site.split(".", 1)[1]
        real = getattr(owner, attr)
        setattr(owner, attr, self._wrap(real))
        try:
            yield self
        finally:
            setattr(owner, attr, real)


class FaultyConnection:
    """A sqlite3 connection whose ``COMMIT`` statements go through the injector."""

    def __init__(self, db: sqlite3.Connection, injector: Injector) -> None:
        self._db = db
        self._injector = injector

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.strip().upper().startswith(("COMMIT", "END")) and self._injector.hit():
            raise sqlite3.OperationalError(SQLITE_WORDS[self._injector.code])
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)
