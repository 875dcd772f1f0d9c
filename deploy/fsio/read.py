"""Reading files: what a path holds now, read once and hashed as it streams.

This module owns the read side: :class:`FileState` (what the index records of a file),
:class:`Contents` (a file read once: its bytes when small, only its hash when large),
the regular-file open that never follows a final symlink, and the readers. Files are
read in chunks through ``os.read``/``os.readv``, so a 1 GiB file costs 1 MiB of memory
and a fault injected on those calls reaches us. ``CHUNK`` and ``LARGE`` live here, at
the bottom, because the readers and every writer above them size their work by them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

T = TypeVar("T")
CHUNK = 1 << 20
# Files this large are copied with their hash on a second thread and their writeback
# started as they go (see large._copy_large), and a script and its target this large are
# hashed on two threads at once (read_alongside).
LARGE = 8 * CHUNK


# Never follow a final symlink, never block: a FIFO opened without O_NONBLOCK waits for a
# writer for ever (``deploy.scripts`` hung on one); what is opened is then checked regular.
OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class FileState(NamedTuple):
    """What a path holds now: absent, or a regular file with this hash, size, mode and
    owner (uid, gid)."""

    exists: bool
    sha256: str | None = None
    size: int = 0
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def owner(self) -> tuple[int, int] | None:
        return (self.uid, self.gid) if self.uid is not None and self.gid is not None else None


ABSENT = FileState(exists=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Contents:
    """A regular file read once: its size and mode, and its bytes when it is small.

    Small files (under ``CHUNK``) keep their bytes, so two of them compare byte for byte
    and hash only when a hash is asked for; a large one was streamed through the hash.
    """

    __slots__ = ("_sha256", "data", "gid", "mode", "size", "uid")

    def __init__(self, size: int, mode: int, data: bytes | None, sha256: str | None = None,
                 uid: int | None = None, gid: int | None = None):
        self.size, self.mode, self.data, self._sha256 = size, mode, data, sha256
        self.uid, self.gid = uid, gid

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            assert self.data is not None
            self._sha256 = hashlib.sha256(self.data).hexdigest()
        return self._sha256

    def same_bytes(self, other: Contents) -> bool:
        if self.size != other.size:
            return False
        if self.data is not None and other.data is not None:
            return self.data == other.data
        return self.sha256 == other.sha256

    def state(self) -> FileState:
        return FileState(True, self.sha256, self.size, self.mode, self.uid, self.gid)


def read_contents(path: str | Path) -> Contents | None:
    """Read a regular file without following a final symlink; None when it is missing.

    A symlink or any other non-regular file raises ``OSError(ELOOP/EISDIR)`` so that
    the caller can refuse it with a clear message.
    """
    opened = open_regular(path)
    if opened is None:
        return None
    fd, st = opened
    try:
        return _read_open(fd, st)
    finally:
        os.close(fd)


def read_alongside(path: str | Path, other: Callable[[], T]) -> tuple[Contents | None, T]:
    """``(read_contents(path), other())``, at once when ``path`` is large.

    A large file is hashed on a second thread while ``other()`` runs (hashlib lets go of
    the GIL), so that a script and the target it replaces hash on two cores together:
    planning a 1 GiB deploy then costs one file's hashing, not two. Errors are raised
    as if the two ran in turn, ``path``'s first.
    """
    opened = open_regular(path)
    if opened is None:
        return None, other()
    fd, st = opened
    try:
        if st.st_size < LARGE:
            return _read_open(fd, st), other()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy-read") as pool:
            reading = pool.submit(_read_open, fd, st)
            try:
                result = other()
            except BaseException:
                if (first := reading.exception()) is not None:
                    raise first from None
                raise
            return reading.result(), result
    finally:
        os.close(fd)


def open_regular(path: str | Path) -> tuple[int, os.stat_result] | None:
    """Open a regular file for reading, never following a final symlink and never blocking
    (a FIFO, socket or device is refused with EISDIR/ENXIO); None: missing."""
    try:
        fd = os.open(path, OPEN_READ)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_open(fd: int, st: os.stat_result) -> Contents:
    mode = stat.S_IMODE(st.st_mode)
    if st.st_size < CHUNK:
        data = _read_small(fd, st.st_size)
        if len(data) < CHUNK:
            return Contents(len(data), mode, data, None, st.st_uid, st.st_gid)
        digest = hashlib.sha256(data)
        size = len(data)
    else:
        digest, size = hashlib.sha256(), 0
    for chunk in _chunks(fd, CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return Contents(size, mode, None, digest.hexdigest(), st.st_uid, st.st_gid)


def state_of(contents: Contents | None) -> FileState:
    """The FileState of what :func:`read_contents` returned (None: ABSENT)."""
    return ABSENT if contents is None else contents.state()


def read_state(path: str | Path) -> FileState:
    """Hash a regular file without following a final symlink; ABSENT when missing."""
    return state_of(read_contents(path))


def _read_small(fd: int, size_hint: int) -> bytes:
    """Read a file that ``fstat`` called small: one read when it did not grow meanwhile.

    Asking for one byte more than its size and getting exactly its size means the
    read reached its end. Any other count (a file that grew or shrank since the
    ``fstat``, or a short read some filesystems give) reads on until a read returns
    nothing, or until the file is no longer small.
    """
    data = os.read(fd, size_hint + 1)
    if len(data) == size_hint:
        return data
    parts = [data]
    total = len(data)
    while total < CHUNK and (chunk := os.read(fd, CHUNK - total)):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _chunks(fd: int, size_hint: int) -> Iterator[memoryview]:
    """Read ``fd`` to its end in chunks. A small file is one read; a large one reuses one
    1 MiB buffer, so a 1 GiB file costs 1 MiB of memory and no allocation per chunk."""
    if size_hint < CHUNK:
        data = os.read(fd, size_hint + 1)
        if data:
            yield memoryview(data)
        if len(data) == size_hint:
            return  # exactly the size fstat gave: that read reached the end
        while data := os.read(fd, CHUNK):
            yield memoryview(data)
        return
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := os.readv(fd, [buf]):
        yield view[:n]


def read_bytes(path: Path) -> bytes:
    """Read a small file (a version file, a template) whole, never following a symlink nor
    blocking; a missing one raises FileNotFoundError, a non-regular one EISDIR."""
    opened = open_regular(path)
    if opened is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    fd, _st = opened
    try:
        parts = []
        while chunk := os.read(fd, CHUNK):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)
