"""Compressing old backups (issue 13 "Compression"): ``<contract name>.zst``, durably.

:func:`due` decides, purely, which backups are compressed: those older than
``compress_after_days`` by the index's creation time, never the newest backup of its
target (it stays plain, so the likeliest restore is a ``cp``). :func:`compress` does it,
one backup at a time, in an order that loses nothing whenever it is killed:

1. the ``.zst`` is written to a temp file beside the backup (a standard zstd frame with
   the content size and checksum, so ``zstd -d`` restores it by hand), hashing the
   plain file as it is read: bytes other than the index's are not compressed;
2. fsync, rename to ``<name>.zst``, fsync the folder;
3. the ``.zst`` is read back and decompressed: its sha256 and size must be the row's;
4. the row is marked compressed, with its stored size, and committed;
5. only then is the plain file removed (and the folder fsynced).

A kill before 4 leaves the plain file the index vouches for and a ``.zst`` no row
knows; after 4, a ``.zst`` the index vouches for and a leftover plain file. Either way
both hold the bytes, and :func:`tidy` (run first by every prune) removes the extra one.

Dedupe reaches the compressed form too: when a verified ``.zst`` of the same bytes is in
the tree already, the backup's ``.zst`` name becomes a hard link to it instead of a second
compression (the plain file's other names, newer rows' backups, are not touched).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from deploy import categories, fsio
from deploy.errors import DeployError, Untrusted
from deploy.fsio.read import open_regular
from deploy.states import HOLDS_BACKUP
from deploy.store import stored, trust
from deploy.store.index import ChangeRow, Index
from deploy.store.index.rows import ZST
from deploy.store.session import Session
from deploy.store.tree import Store, describe, oserror
from deploy.store.trust import PRIVATE_FILE

DAY = 86400.0
COMPRESSED, LINKED, SKIPPED = "compressed", "linked", "skipped"


class Compressed(NamedTuple):
    """What became of one backup: ``outcome`` COMPRESSED (a new ``.zst``), LINKED (a hard
    link to an equal ``.zst``) or SKIPPED (``detail`` says why; the plain file stays)."""

    row: ChangeRow
    outcome: str
    path: Path
    stored_size: int = 0
    detail: str = ""


def due(rows: Iterable[ChangeRow], after_days: int, now: float | None = None
        ) -> list[ChangeRow]:
    """The backups to compress, oldest first: plain, older than ``after_days`` days by the
    index's creation time (never an mtime), and not the newest (highest sequence number)
    backup of their target."""
    now = time.time() if now is None else now
    newest: dict[str, int] = defaultdict(int)
    listed = [r for r in rows if r.backup is not None and not r.pruned]
    for row in listed:
        newest[row.target] = max(newest[row.target], row.seq)
    return sorted((r for r in listed
                   if not r.compressed and r.backup is not None and r.seq != newest[r.target]
                   and now - r.created_ts >= after_days * DAY), key=lambda r: r.seq)


def compress(sess: Session, rows: Iterable[ChangeRow]) -> list[Compressed]:
    """Compress each backup of ``rows`` in turn (see the module's docstring); a signal is
    taken between two backups, where each is plain or compressed and the index says so."""
    done: list[Compressed] = []
    for row in rows:
        sess.signals.check(f"{len(done)} backup(s) compressed before it; the rest stay plain")
        fresh = sess.index.changes.get(row.seq)
        if fresh is None or fresh.compressed or fresh.pruned or fresh.backup is None:
            continue
        done.append(compress_one(sess.store, sess.index, fresh, dedupe=sess.dedupe))
    return done


def _skip(row: ChangeRow, path: Path, detail: str) -> Compressed:
    return Compressed(row, SKIPPED, path, 0, detail)


def compress_one(store: Store, index: Index, row: ChangeRow, *, dedupe: bool = True
                 ) -> Compressed:
    """Compress (or, with ``dedupe``, link) one plain backup; see the module's docstring
    for the order."""
    assert row.backup is not None
    plain = store.tree / row.backup
    dest = store.tree / (row.backup + ZST)
    try:
        st = trust.check(plain, "backup", folder=False)
    except Untrusted as err:
        return _skip(row, plain, f"not compressed: {str(err).removeprefix(f'{plain}: ')}")
    if st is None:
        return _skip(row, plain, f"not compressed: backup {row.seq} is missing (see "
                     "`invoke backups.verify`)")
    links = stored.link_problem(store.tree, index, row, st)
    if links is not None:
        return _skip(row, plain, f"not compressed: backup {row.seq} {links}")
    blob = _link_equal(store, index, row, dest) if dedupe else None
    outcome = LINKED
    if blob is None:
        outcome = COMPRESSED
        try:
            written = _write_frame(plain, dest, row)
        except _Changed as err:
            return _skip(row, plain, str(err))
        except OSError as err:
            raise oserror("compressing backup", plain, err) from err
        if written is not None:
            return _skip(row, plain, written)
        blob = row.seq
    try:
        size = os.lstat(dest).st_size
    except OSError as err:
        raise oserror("reading compressed backup", dest, err) from err
    check = row._replace(compressed=1)
    again = stored.problem(store.tree, None, check)
    if again is not None:
        _unlink_quietly(dest)
        return _skip(row, dest, f"not compressed: the compressed copy did not verify: "
                     f"{again[1]}")
    with index.transaction():
        index.changes.set_stored(row.seq, compressed=True, stored_size=size,
                                 blob=None if blob == row.seq else blob)
    _remove_plain(store, index, row)
    return Compressed(row, outcome, dest, size)


class _Changed(DeployError):
    """The plain file did not hold the index's bytes while it was compressed."""


def _write_frame(plain: Path, dest: Path, row: ChangeRow) -> str | None:
    """Write the zstd frame of ``plain`` to ``dest`` durably (temp, fsync, rename, fsync
    the folder); a string says why it was not (the file is not what the row says)."""
    import zstandard

    opened = open_regular(plain)
    if opened is None:
        return f"not compressed: backup {row.seq} is missing"
    src, st = opened
    tmp = fsio.temp_path(dest)
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     PRIVATE_FILE)
        digest = hashlib.sha256()
        cctx = zstandard.ZstdCompressor(level=stored.LEVEL, write_checksum=True,
                                        write_content_size=True)
        try:
            with os.fdopen(os.dup(fd), "wb", closefd=True) as out, \
                    cctx.stream_writer(out, size=st.st_size, closefd=False) as writer:
                while chunk := os.read(src, fsio.CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
        except zstandard.ZstdError as err:  # the file's size changed while it was read
            raise _Changed(f"not compressed: backup {row.seq} changed while it was "
                           f"compressed ({err})") from err
        if digest.hexdigest() != row.old_sha256:
            raise _Changed(f"not compressed: backup {row.seq} does not hold the bytes the "
                           "index records (see `invoke backups.verify`)")
        os.fchmod(fd, PRIVATE_FILE)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink_quietly(tmp)
        raise
    finally:
        os.close(src)
    fsio.fsync_dir(dest.parent)
    return None


def _link_equal(store: Store, index: Index, row: ChangeRow, dest: Path) -> int | None:
    """Make ``dest`` a hard link to a verified ``.zst`` of the same bytes already in the
    tree; returns the blob (the row whose write made that inode), or None when there is
    none to share (or the link fails: another file system, too many links)."""
    assert row.old_sha256 is not None
    for other in index.changes.holding(row.old_sha256, row.old_size):
        if not other.compressed or other.seq == row.seq:
            continue
        if stored.problem(store.tree, index, other) is not None:
            continue
        tmp = fsio.temp_path(dest)
        try:
            os.link(store.backup_path(other), tmp)
            os.replace(tmp, dest)
        except OSError:
            _unlink_quietly(tmp)
            continue
        fsio.fsync_dir(dest.parent)
        return other.blob if other.blob is not None else other.seq
    return None


def _remove_plain(store: Store, index: Index, row: ChangeRow) -> None:
    """Step 5: the plain file goes (unless a row of an older index shares its very name)."""
    assert row.backup is not None
    if index.changes.backup_shared(row.backup, row.seq):
        return
    plain = store.tree / row.backup
    try:
        os.unlink(plain)
    except FileNotFoundError:
        return
    except OSError as err:
        raise oserror("removing the plain copy of compressed backup", plain, err) from err
    fsio.fsync_dir(plain.parent)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def leftovers(store: Store, index: Index) -> list[tuple[Path, ChangeRow]]:
    """What a compression cut short left, read-only: each extra file with the row whose
    backup it duplicates (a plain file beside the ``.zst`` its row is stored as, or a
    ``.zst`` beside the plain file its row still vouches for), and a temp file of a dead
    writer (its row None) in the category folders."""
    found: list[tuple[Path, ChangeRow]] = []
    files = {str(p.relative_to(store.tree)) for p in store.backup_files()}
    for rel in sorted(f for f in files if f.endswith(ZST) and f.removesuffix(ZST) in files):
        plain = rel.removesuffix(ZST)
        row = index.changes.naming(plain)
        if row is None or row.pruned or row.state not in HOLDS_BACKUP:
            continue  # no row vouches for either: verify names them as orphans
        if row.compressed and index.changes.backup_shared(plain, row.seq):
            continue
        found.append((store.tree / (plain if row.compressed else rel), row))
    return found


def stale_temps(store: Store) -> bool:
    """Whether a category folder holds a temp file (a killed writer's, or a live one's)."""
    return any(fsio.is_temp_name(name) for folder in categories.FOLDERS
               for _dirpath, _dirs, names in os.walk(store.tree / folder) for name in names)


def tidy(sess: Session) -> list[Path]:
    """Remove what a compression cut short left (:func:`leftovers`): each removed file's
    bytes are also in the one that stays (a plain copy stays while its ``.zst`` does not
    verify); returns the removed files."""
    store, index = sess.store, sess.index
    for folder in categories.FOLDERS:
        for dirpath, _dirs, _files in os.walk(store.tree / folder):
            fsio.remove_stale_temps(Path(dirpath))  # a killed compression's temp file
    removed: list[Path] = []
    for path, row in leftovers(store, index):
        if row.compressed and stored.problem(store.tree, index, row) is not None:
            continue
        try:
            os.unlink(path)
            fsio.fsync_dir(path.parent)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise DeployError(f"{path}: removing a leftover of a compression failed: "
                              f"{describe(err)}") from err
        removed.append(path)
    return removed
