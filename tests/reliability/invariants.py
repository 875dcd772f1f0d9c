"""The six invariants of RELIABILITY.md, checked against a scratch project.

Each check returns a list of :class:`Violation` instead of asserting, so that a
sweep can count how many faulty runs kept every invariant (and how many bytes
were lost) for the reliability table before it fails the test.

The checks read the project with nothing but the standard library: the index is
opened read-only through SQLite's ``mode=ro`` URI, files are hashed directly.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import stat
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

TEMP_MARK = ".deploy-tmp-"
# Run states that promise the change's backup file exists and holds the old bytes.
BACKED_STATES = ("backed_up", "applied", "reverted")

NO_LOSS = "no loss"
NO_TORN = "no torn target"
CLEAR_ERROR = "clear error"
INDEX = "consistent index"
CLEAN = "clean state"
RESTORES = "rollback restores"


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str
    bytes_lost: int = 0

    def __str__(self) -> str:
        lost = f" ({self.bytes_lost} bytes lost)" if self.bytes_lost else ""
        return f"{self.invariant}: {self.detail}{lost}"


@dataclass(frozen=True)
class FileVersion:
    """What one path holds: a regular file's sha256, mode and size, or a symlink's text."""

    sha256: str
    mode: int
    size: int

    def show(self) -> str:
        return f"{self.sha256[:12]} mode {self.mode:04o} ({self.size} bytes)"


Files = dict[str, FileVersion]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def stored_sha256(tree: Path, row: dict[str, object]) -> str | None:
    """The sha256 of the original bytes a row's backup file holds as the index says it is
    stored (``<backup>.zst``, decompressed with zstandard on its own, when ``compressed``);
    None when the file is missing or a symlink, ``"corrupt"`` when the frame is bad."""
    compressed = bool(row.get("compressed"))
    path = tree / (str(row["backup"]) + (".zst" if compressed else ""))
    if path.is_symlink() or not path.is_file():
        return None
    if not compressed:
        return sha256_file(path)
    import zstandard

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as rd:
            while chunk := rd.read(1 << 20):
                digest.update(chunk)
    except zstandard.ZstdError:
        return "corrupt"
    return digest.hexdigest()


def file_states(root: Path, exclude: tuple[str, ...] = ("state",)) -> Files:
    """Every regular file and symlink under ``root`` by relative path, skipping ``exclude``
    (top-level names) and temp files (those are the clean-state check's business)."""
    found: Files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in exclude]
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            if TEMP_MARK in name:
                continue
            path = here / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                text = os.readlink(path)
                found[rel] = FileVersion("link:" + text, 0o777, len(text))
            elif stat.S_ISREG(st.st_mode):
                found[rel] = FileVersion(sha256_file(path), stat.S_IMODE(st.st_mode), st.st_size)
    return found


# -- 1. no loss ------------------------------------------------------------------------------
def check_no_loss(root: Path, before: Files, new: Files, now: Files,
                  rows: list[dict[str, object]] | None, tree: Path) -> list[Violation]:
    """Every original the operation replaces is still in its target, or in a backup the
    index knows (backed up, not pruned) whose file hashes to the original's sha256."""
    found = []
    for rel, old in before.items():
        if new.get(rel) == old:
            continue  # the operation does not replace it
        if now.get(rel) is not None and now[rel].sha256 == old.sha256:
            continue
        target = str(root / rel)
        saved = False
        for row in rows or ():
            if row["target"] != target or row["old_sha256"] != old.sha256 or not row["backup"]:
                continue
            if row["state"] not in BACKED_STATES or row["pruned"]:
                continue
            if stored_sha256(tree, row) == old.sha256:
                saved = True
                break
        if not saved:
            found.append(Violation(NO_LOSS, f"{rel}: original {old.show()} is neither in the "
                                   "target nor in a verified backup", old.size))
    return found


def check_backups_kept(tree: Path, earlier: dict[str, str]) -> list[Violation]:
    """Backups that existed before the operation still hold their bytes (none is lost)."""
    found = []
    for rel, sha in earlier.items():
        path = tree / rel
        if not path.is_file() and stored_sha256(tree, {"backup": rel, "compressed": 1}) == sha:
            continue  # compressed since: the bytes are in <rel>.zst
        if not path.is_file() or sha256_file(path) != sha:
            size = 0
            found.append(Violation(NO_LOSS, f"earlier backup {rel} is gone or changed", size))
    return found


# -- 2. no torn target -----------------------------------------------------------------------
def check_no_torn(before: Files, new: Files, now: Files) -> list[Violation]:
    """Each path holds exactly its old version or its new one (bytes and mode), and no other
    file appeared: absent counts as a version when the path was or will be absent."""
    found = []
    for rel in sorted(set(before) | set(new) | set(now)):
        allowed = {before.get(rel), new.get(rel)}
        if now.get(rel) not in allowed:
            have = now[rel].show() if rel in now else "absent"
            want = " or ".join(v.show() if v else "absent" for v in allowed)
            found.append(Violation(NO_TORN, f"{rel}: holds {have}; expected {want}"))
    return found


# -- 3. clear error --------------------------------------------------------------------------
def check_clear_error(code: int, stderr: str, *, names: tuple[str, ...] = (),
                      causes: tuple[str, ...] = ()) -> list[Violation]:
    """Exit != 0, exactly one non-empty stderr line, ``error: ...`` naming a path under one of
    ``names`` and (when given) one of ``causes``; never a traceback."""
    found = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code == 0:
        found.append(Violation(CLEAR_ERROR, "the run failed but exited 0"))
    if "Traceback" in stderr:
        found.append(Violation(CLEAR_ERROR, "traceback: " + stderr.strip()[-400:]))
    elif len(lines) != 1 or not lines[0].startswith("error: "):
        found.append(Violation(CLEAR_ERROR, f"want one 'error:' line, got {stderr!r}"))
    elif names and not any(name in lines[0] for name in names):
        found.append(Violation(CLEAR_ERROR, f"names no path under {names[0]}: {lines[0]}"))
    elif causes and not any(cause.lower() in lines[0].lower() for cause in causes):
        found.append(Violation(CLEAR_ERROR, f"does not say {causes[0]!r}: {lines[0]}"))
    return found


# -- 4. consistent index ---------------------------------------------------------------------
def open_index(tree: Path) -> sqlite3.Connection | None:
    """The index read-only; when a killed run left a hot journal (which a read-only
    connection cannot roll back), a copy of index and journal rolled back in memory."""
    path = tree / "index.sqlite"
    if not path.exists():
        return None
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db.close()
        journal = tree / "index.sqlite-journal"
        if not journal.exists():
            raise
        db = _rolled_back_copy(path, journal)
    except BaseException:
        db.close()  # "file is not a database": check_index reports it, nothing leaks
        raise
    db.row_factory = sqlite3.Row
    return db


def _rolled_back_copy(path: Path, journal: Path) -> sqlite3.Connection:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="index-copy-") as tmp:
        copy = Path(tmp) / "index.sqlite"
        shutil.copyfile(path, copy)
        shutil.copyfile(journal, Path(tmp) / "index.sqlite-journal")
        with closing(sqlite3.connect(copy)) as disk:
            disk.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls the copy back
            memory = sqlite3.connect(":memory:")
            try:
                disk.backup(memory)
            except BaseException:
                memory.close()
                raise
    return memory


def read_rows(tree: Path) -> list[dict[str, object]] | None:
    """Every change row of the index, or None when there is no index."""
    db = open_index(tree)
    if db is None:
        return None
    try:
        return [dict(r) for r in db.execute("SELECT * FROM changes ORDER BY seq")]
    finally:
        db.close()


def read_runs(tree: Path) -> list[dict[str, object]]:
    db = open_index(tree)
    if db is None:
        return []
    try:
        return [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        db.close()


def check_index(tree: Path, *, allow_running: bool = True) -> list[Violation]:
    """The index opens read-only and passes SQLite's integrity check; change seqs (and run
    ids) are 1..n with no gap or duplicate; every backup a row vouches for exists and
    hashes to its old sha256; no run is left ``running`` unless ``allow_running``."""
    found = []
    try:
        db = open_index(tree)
        if db is None:
            return []
        try:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                found.append(Violation(INDEX, f"integrity_check: {check}"))
            seqs = [r[0] for r in db.execute("SELECT seq FROM changes ORDER BY seq")]
            runs = [dict(r) for r in db.execute("SELECT id, state FROM runs ORDER BY id")]
            rows = [dict(r) for r in db.execute("SELECT * FROM changes ORDER BY seq")]
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        return [Violation(INDEX, f"cannot read the index read-only: {err}")]
    if seqs != list(range(1, len(seqs) + 1)):
        found.append(Violation(INDEX, f"change seqs are not 1..{len(seqs)}: {seqs}"))
    ids = [r["id"] for r in runs]
    if ids != list(range(1, len(ids) + 1)):
        found.append(Violation(INDEX, f"run ids are not 1..{len(ids)}: {ids}"))
    if not allow_running:
        running = [r["id"] for r in runs if r["state"] == "running"]
        if running:
            found.append(Violation(INDEX, f"runs still recorded as running: {running}"))
    for row in rows:
        if not row["backup"] or row["pruned"] or row["state"] not in BACKED_STATES:
            continue
        sha = stored_sha256(tree, row)
        if sha is None:
            found.append(Violation(INDEX, f"backup {row['seq']} ({row['backup']}) is missing",
                                   int(row["old_size"] or 0)))
        elif sha != row["old_sha256"]:
            found.append(Violation(INDEX, f"backup {row['seq']} ({row['backup']}) does not "
                                   "match its sha256", int(row["old_size"] or 0)))
    return found


def verified_backups(tree: Path) -> dict[str, str]:
    """Backup files the index vouches for, by path relative to the tree, with their sha256."""
    return {str(r["backup"]): str(r["old_sha256"]) for r in read_rows(tree) or ()
            if r["backup"] and not r["pruned"] and r["state"] in BACKED_STATES}


# -- 5. clean state --------------------------------------------------------------------------
def temp_files(root: Path) -> list[str]:
    return sorted(str(Path(d, n).relative_to(root)) for d, dirs, files in os.walk(root)
                  for n in files + dirs if TEMP_MARK in n)


def lock_is_free(tree: Path) -> bool:
    path = tree / "lock"
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def check_clean(root: Path, tree: Path) -> list[Violation]:
    """No run holds the lock and no temp file is left anywhere under the project."""
    found = []
    if not lock_is_free(tree):
        found.append(Violation(CLEAN, f"{tree / 'lock'} is still locked"))
    left = temp_files(root)
    if left:
        found.append(Violation(CLEAN, f"temp files left: {left}"))
    return found


# -- 6. rollback restores --------------------------------------------------------------------
def check_restored(before: Files, now: Files) -> list[Violation]:
    """After rolling back, every path equals the pre-operation snapshot, bytes and mode."""
    found = []
    for rel in sorted(set(before) | set(now)):
        if before.get(rel) != now.get(rel):
            have = now[rel].show() if rel in now else "absent"
            want = before[rel].show() if rel in before else "absent"
            lost = before[rel].size if rel in before else 0
            found.append(Violation(RESTORES, f"{rel}: holds {have}, was {want}", lost))
    return found
