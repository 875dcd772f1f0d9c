"""Durable, atomic file writes that stream and hash as they go.

The order is the one python-atomicwrites taught: write a temp file in the
target's own folder, fsync it, give it its mode, rename it over the target,
then fsync the folder (a file fsync does not persist the rename). Files are
streamed in chunks through ``os.read``/``os.write`` so that memory stays flat
for a 1 GiB file and so that fault injection on ``os.write`` reaches us.

This module owns that order and every step of it: staging a batch of temp files and
syncing them together (group commit), writing a synced temp file, putting it in place
(rename over, or link only where nothing is), fsyncing folders, and durable unlink and
mkdir. It builds on ``read`` (the chunked reader), ``large`` (the copy a large file
takes) and ``temps`` (the temp names and their cleanup).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from deploy.fsio.large import _advise, _copy_large, _write_all, stream_into
from deploy.fsio.read import LARGE, _chunks, open_regular
from deploy.fsio.temps import _unlink_quietly, temp_path

# The guide's troubleshooting log (`--verbose`): each folder this creates.
log = logging.getLogger("deploy.fsio")


class Mismatch(ValueError):
    """The bytes written are not the bytes expected: the source changed since it was
    planned. The temp file is removed before its mode or owner is set."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"sha256 {sha256}")
        self.sha256 = sha256


Owner = tuple[int, int]


class Stream:
    """Content made as it is written, one chunk at a time (a compressed backup's original
    bytes, ``deploy.store.stored.Decompressed``): a write of it holds one chunk in memory,
    never the whole file. ``str()`` names its source in messages."""

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self) -> bytes:
        """All of it at once: for what is small (a dry run's diff of a version file)."""
        return b"".join(self.chunks())


class Staged:
    """A written temp file not yet synced: its path, its open descriptor, its hash and size."""

    __slots__ = ("cold", "fd", "sha256", "size", "tmp")

    def __init__(self, tmp: Path, fd: int, sha256: str, size: int, cold: bool = False) -> None:
        self.tmp, self.fd, self.sha256, self.size, self.cold = tmp, fd, sha256, size, cold


def stage(target: Path, data: bytes | Path | Stream, mode: int, *, cold: bool = False,
          expect: str | None = None, owner: Owner | None = None) -> Staged:
    """Write ``data`` to a temp file beside ``target`` with its final mode, not yet synced.

    The temp file is 0600 while it is written; only once its bytes hash to ``expect``
    (when given; else :class:`Mismatch`) does it get ``owner`` and then ``mode``.

    The descriptor stays open so that :func:`sync` can fsync a whole batch after every
    file of it was written: one journal commit then covers the batch ("group commit").
    ``cold``: a copy nobody will read soon (a backup); a large one keeps only a window
    of its pages in the page cache while it is written, and none once synced.
    """
    tmp, sha, size, fd = _write(target, data, mode, sync=False, cold=cold, expect=expect,
                                owner=owner)
    return Staged(tmp, fd, sha, size, cold)


def sync(staged: Staged) -> None:
    """fsync and close a staged file; on failure remove it (never retry a failed fsync)."""
    try:
        os.fsync(staged.fd)
    except BaseException:
        discard(staged)
        raise
    if staged.cold and staged.size >= LARGE:
        _advise(staged.fd, 0, 0)  # synced, so clean: give its pages back
    os.close(staged.fd)
    staged.fd = -1


def discard(staged: Staged) -> None:
    """Close (if still open) and remove a staged temp file; never raises."""
    if staged.fd >= 0:
        try:
            os.close(staged.fd)
        except OSError:
            pass
        staged.fd = -1
    _unlink_quietly(staged.tmp)


def write_temp(target: Path, data: bytes | Path | Stream, mode: int, *, expect: str | None = None,
               owner: Owner | None = None) -> tuple[Path, str, int]:
    """Write ``data`` (bytes, or the file at a Path) to a fsynced temp file beside ``target``.

    Returns (temp path, sha256, size). On any failure the temp file is removed
    and the original error propagates; cleanup never hides it.
    """
    tmp, sha, size, _fd = _write(target, data, mode, sync=True, expect=expect, owner=owner)
    return tmp, sha, size


def _write(target: Path, data: bytes | Path | Stream, mode: int, *, sync: bool, cold: bool = False,
           expect: str | None = None, owner: Owner | None = None
           ) -> tuple[Path, str, int, int]:
    tmp = temp_path(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        digest = hashlib.sha256()
        size = 0
        if isinstance(data, Path):
            opened = open_regular(data)  # never through a link, never blocking
            if opened is None:
                raise FileNotFoundError(2, "No such file or directory", str(data))
            src, st = opened
            try:
                hint = st.st_size
                if hint >= LARGE:
                    size = _copy_large(src, fd, digest, cold=cold)
                else:
                    for chunk in _chunks(src, hint):
                        digest.update(chunk)
                        _write_all(fd, chunk)
                        size += len(chunk)
            finally:
                os.close(src)
        elif isinstance(data, Stream):
            size = stream_into(fd, data.chunks(), digest)
        else:
            digest.update(data)
            _write_all(fd, data)
            size = len(data)
        if expect is not None and digest.hexdigest() != expect:
            raise Mismatch(digest.hexdigest())
        if owner is not None:
            _chown(fd, owner)  # before the mode: chown clears set-id bits
        # mkstemp-style files start at 0600: set the mode before the rename.
        os.fchmod(fd, mode)
        if sync:
            os.fsync(fd)
        elif size < LARGE:
            # Staged for a batch fsync: start its writeback now (dpkg's trick, with
            # sync_file_range), so the batch's data is in flight before the first fsync
            # and the fsyncs find less left to wait for: writing and syncing 256 new
            # 4 KiB files took a 27 ms median instead of 43 on the bench machine. A large
            # file was kicked as it was written.
            _advise(fd, 0, 0)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    if sync:
        os.close(fd)
        fd = -1
    return tmp, digest.hexdigest(), size, fd


def _chown(fd: int, owner: Owner) -> None:
    """Give the file ``owner`` (uid, gid) if it is not already theirs. Only root may give a
    file away: anyone else keeps their own file, as before owners were recorded."""
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == owner:
        return
    try:
        os.fchown(fd, *owner)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def commit_temp(tmp: Path, target: Path) -> None:
    """Rename a written temp file over its target; the caller fsyncs the folder."""
    try:
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def create_from_temp(tmp: Path, target: Path) -> None:
    """Put a temp file in place only if ``target`` still does not exist.

    ``os.link`` fails with EEXIST instead of replacing, so a file that appeared after the
    plan recorded the target as absent is never overwritten without a backup.
    """
    try:
        os.link(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    try:
        os.unlink(tmp)
    except OSError:
        # Both names hold the file: take the new one back so the run fails whole instead of
        # leaving a stray temp name in the target folder (found by the reliability sweep).
        _unlink_quietly(target)
        _unlink_quietly(tmp)
        raise


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes | Path | Stream, mode: int,
                 owner: Owner | None = None) -> tuple[str, int]:
    """Write one file atomically and durably; returns (sha256, size)."""
    tmp, sha, size = write_temp(target, data, mode, owner=owner)
    commit_temp(tmp, target)
    fsync_dir(target.parent)
    return sha, size


def unlink_durably(target: Path) -> None:
    """Remove a file (missing is fine) and fsync its folder."""
    try:
        os.unlink(target)
    except FileNotFoundError:
        return
    fsync_dir(target.parent)


def makedirs_durably(folder: Path, mode: int = 0o755) -> None:
    """Create ``folder`` and missing parents (``mode``, then the umask), fsyncing each new
    entry's parent."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for path in reversed(missing):
        log.debug("creating folder %s", path)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            continue
        fsync_dir(path.parent)
