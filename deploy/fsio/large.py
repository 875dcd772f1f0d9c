"""The large-file path: a copy that hashes on a second thread and writes back as it goes.

A file of ``LARGE`` bytes or more (see ``read``) is copied through a ring of buffers
while another thread hashes it, with writeback advice every ``KICK`` bytes so the final
fsync finds little left to do; a cold copy (a backup) also gives its pages back. It owns
the ring constants, the ``posix_fadvise`` handle and :func:`_advise` (the durable write
order asks for writeback through it too), and the one write loop, :func:`_write_all`,
that the ring and the small-file path in ``durable`` share. It needs ``CHUNK`` from
``read`` and nothing from the modules above it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from collections.abc import Iterable

from deploy.fsio.read import CHUNK

RING = 4
KICK = 8 * CHUNK
WINDOW = 4 * KICK
_FADVISE: int | None = getattr(os, "POSIX_FADV_DONTNEED", None) if sys.platform == "linux" \
    else None


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _copy_large(src: int, dst: int, digest: hashlib._Hash, *, cold: bool = False) -> int:
    """Copy ``src`` to ``dst`` to its end, hashing on a second thread; returns the size.

    Hashing a GiB costs about as much CPU as writing it, and hashlib lets go of the GIL,
    so the chunk just read is hashed while it is written (a ring of ``RING`` buffers; a
    buffer is read into again only once its hash is done). Every ``KICK`` bytes written
    start their writeback (``POSIX_FADV_DONTNEED`` on Linux), so the disk works while we
    copy instead of all at once in the final fsync, and the page cache never holds a GiB
    of dirty pages. Measured on the bench machine: a 1 GiB copy with its fsync went from a
    2.0 s median to 0.67 s.

    A ``cold`` copy (a backup of a target about to be replaced) also gives back the pages
    of what it read, and of what it wrote more than ``WINDOW`` ago and has written back
    since (the same advice drops clean pages and leaves dirty ones). A GiB backup then
    holds a few MiB of page cache, not a GiB of the user's, and the pages it frees serve
    the new target's copy, which stays cached for its users.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    ring = [bytearray(CHUNK) for _ in range(RING)]
    pending: list[Future[None] | None] = [None] * RING
    size = kicked = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy-hash") as hasher:
        for turn in itertools.count():
            slot = turn % RING
            if (previous := pending[slot]) is not None:
                previous.result()
            n = os.readv(src, [ring[slot]])
            if not n:
                break
            view = memoryview(ring[slot])[:n]
            pending[slot] = hasher.submit(digest.update, view)
            _write_all(dst, view)
            size += n
            if size - kicked >= KICK:
                start = max(0, size - WINDOW) if cold else kicked
                _advise(dst, start, size - start)
                if cold:
                    _advise(src, kicked, size - kicked)  # read: clean already
                kicked = size
        for future in pending:
            if future is not None:
                future.result()
    return size


def stream_into(dst: int | None, chunks: Iterable[bytes], digest: hashlib._Hash) -> int:
    """Write ``chunks`` to ``dst`` (None: only hash them) as they come, hashing each on a
    second thread while the next one is made; returns the size. For content made as it is
    written (``durable.Stream``: a ``.zst`` decompressed, which lets go of the GIL too), so
    making, hashing and writing overlap; at most ``RING`` chunks wait for their hash. Every
    ``KICK`` bytes written start their writeback, as :func:`_copy_large` does."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    pending: deque[Future[None]] = deque()
    size = kicked = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy-hash") as hasher:
        for chunk in chunks:
            if len(pending) >= RING:
                pending.popleft().result()
            pending.append(hasher.submit(digest.update, chunk))
            if dst is not None:
                _write_all(dst, chunk)
            size += len(chunk)
            if dst is not None and size - kicked >= KICK:
                _advise(dst, kicked, size - kicked)
                kicked = size
        while pending:
            pending.popleft().result()
    return size


def _advise(fd: int, offset: int, length: int) -> None:
    """``POSIX_FADV_DONTNEED`` on a range (0: to the end): Linux starts writing its dirty
    pages back and drops its clean ones. Advice only, so errors are not ours to report
    (the fsync that follows is what makes the bytes durable)."""
    if _FADVISE is None:
        return
    try:
        os.posix_fadvise(fd, offset, length, _FADVISE)
    except OSError:
        pass
