"""A backup's file as it is stored: plain, or ``<name>.zst``, and shared by hard links.

Every reader of a backup's bytes (restore, verify, migrate's re-check, reindex) goes
through here, so a compressed backup reads like a plain one: :func:`read_original`
gives the original bytes' :class:`~deploy.fsio.FileState` (sha256 and size of what the
target held), :class:`Decompressed` the bytes themselves, streamed. Files are opened
without following a symlink and without blocking, and must be regular.

A stored file may have several names (``deploy.store.dedupe`` links equal backups).
Such a link is trusted only when every one of its names is a name of the tree that the
index records for these same bytes (:func:`link_problem`): a hard link to a file outside
the tree (or under a name no row knows) could let that other name change the bytes that
a root rollback installs, so it is refused like a file another user owns.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from deploy import fsio
from deploy.errors import Untrusted
from deploy.fsio.read import open_regular
from deploy.store import trust
from deploy.store.index.rows import ZST, ChangeRow

if TYPE_CHECKING:
    from deploy.store.index import Index

# zstd level 3 (the tool's default) with its checksum and the content size in the frame
# header, so `zstd -d` restores and checks it by hand (contract).
LEVEL = 3


MISSING, CORRUPT = "missing", "corrupt"


class CorruptFrame(ValueError):
    """A ``.zst`` backup that does not decompress (truncated, flipped bytes, not zstd)."""


def _decompressed(fd: int, digest: hashlib._Hash) -> int:
    """Stream-decompress the frame at ``fd`` into ``digest``, hashing on a second thread
    while the next chunk decompresses; its size."""
    import zstandard

    try:
        with os.fdopen(os.dup(fd), "rb") as raw, \
                zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as rd:
            return fsio.stream_into(None, iter(lambda: rd.read(fsio.CHUNK), b""), digest)
    except zstandard.ZstdError as err:
        raise CorruptFrame(f"not a valid zstd frame: {err}") from err


def read_original(path: Path, compressed: bool) -> fsio.FileState:
    """What the stored file at ``path`` holds, as original bytes: for a ``.zst`` the
    sha256 and size of its decompressed content (its mode and owner are the file's).
    ABSENT when missing; CorruptFrame when a ``.zst`` does not decompress."""
    if not compressed:
        return fsio.read_state(path)
    opened = open_regular(path)
    if opened is None:
        return fsio.ABSENT
    fd, st = opened
    try:
        digest = hashlib.sha256()
        size = _decompressed(fd, digest)
    finally:
        os.close(fd)
    return fsio.FileState(True, digest.hexdigest(), size, stat.S_IMODE(st.st_mode),
                          st.st_uid, st.st_gid)


class Decompressed(fsio.Stream):
    """A ``.zst`` backup's original bytes, decompressed as a restore writes them: one
    chunk in memory, not the file. The write hashes them against the row's sha256 before
    the temp file gets its mode, so a frame altered since it was checked restores nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def chunks(self) -> Iterator[bytes]:
        import zstandard

        from deploy.errors import IntegrityError

        opened = open_regular(self.path)
        if opened is None:
            raise IntegrityError(f"{self.path}: backup is missing; nothing to restore")
        fd, _st = opened
        try:
            with os.fdopen(os.dup(fd), "rb") as raw, zstandard.ZstdDecompressor(
                    ).stream_reader(raw, read_across_frames=True) as reader:
                while chunk := reader.read(fsio.CHUNK):
                    yield chunk
        except zstandard.ZstdError as err:
            raise IntegrityError(f"{self.path}: backup is corrupt: not a valid zstd frame: "
                                 f"{err}") from err
        finally:
            os.close(fd)


def names_of(row: ChangeRow) -> tuple[str, ...]:
    """The names (relative to the tree) a row's backup may lie under: the plain contract
    name, and the ``.zst`` one (a compression killed part way leaves both)."""
    assert row.backup is not None
    return row.backup, row.backup + ZST


def link_problem(tree: Path, index: Index, row: ChangeRow, st: os.stat_result) -> str | None:
    """Why a stored file with more than one name is not to be trusted, or None.

    Trusted: each of its ``st_nlink`` names is a name of the tree that some row of the
    index (in any state: a kill between a prune's commit and its unlink leaves a pruned
    row's name) records for the same sha256. A name outside the tree, or one no row
    records with these bytes, is a link nobody here made.
    """
    if st.st_nlink <= 1 or row.old_sha256 is None:
        return None
    names: set[str] = set()
    for other in index.changes.named_with(row.old_sha256):
        names.update(names_of(other))
    found = 0
    for name in names:
        try:
            other_st = os.lstat(tree / name)
        except OSError:
            continue
        if (other_st.st_dev, other_st.st_ino) == (st.st_dev, st.st_ino):
            found += 1
    if found >= st.st_nlink:
        return None
    return (f"has {st.st_nlink} hard links but only {found} of them are backups the index "
            "records with these bytes; a link from outside the tree could change it, so it "
            "is not trusted (remove the other links, or restore it by hand)")


# (st_dev, st_ino, st_nlink) -> what link_problem found for that file (None: trusted).
LinkCache = dict[tuple[int, int, int], str | None]


def problem(tree: Path, index: Index | None, row: ChangeRow,
            links: LinkCache | None = None) -> tuple[str, str] | None:
    """What is wrong with a row's stored backup, as (MISSING or CORRUPT, detail without
    the path), or None when it holds the row's bytes: a link, not a regular file, not
    ours, a link count the index cannot account for (with ``index``), a frame that does
    not decompress, or other bytes."""
    path = tree / str(row.stored)
    try:
        st = trust.check(path, "backup", folder=False)
        reason = None
        if st is not None and index is not None and st.st_nlink > 1:
            # One answer per file: verify checks every name of a file linked N times, and
            # asking again for each would cost N lstats N times.
            key = (st.st_dev, st.st_ino, st.st_nlink)
            if links is None or key not in links:
                reason = link_problem(tree, index, row, st)
                if links is not None:
                    links[key] = reason
            else:
                reason = links[key]
        if reason is not None:
            return CORRUPT, f"backup {row.seq} {reason}"
        state = read_original(path, bool(row.compressed))
    except Untrusted as err:
        return CORRUPT, str(err).removeprefix(f"{path}: ")
    except CorruptFrame as err:
        return CORRUPT, f"backup {row.seq} is corrupt: {err}"
    except OSError as err:
        return CORRUPT, f"cannot read backup: {err.strerror or err}"
    if not state.exists:
        return MISSING, f"backup {row.seq} is missing"
    if state.sha256 != row.old_sha256:
        what = "its content's" if row.compressed else ""
        return CORRUPT, (f"backup {row.seq} is corrupt: {what + ' ' if what else ''}sha256 "
                         f"{state.sha256} != {row.old_sha256}")
    return None
