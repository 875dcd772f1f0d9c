"""Trust nothing in the tree another user could have written (OpenSSH's StrictModes).

Root's rollback installs whatever a backup holds, with the mode and owner the index
records; so a tree, a folder or a file in it that another user owns or may write, or a
link planted there, is refused before anything is read from it. A tree that only its
owner can enter cannot be changed by anyone else between this check and the use, so
checking the entries once per session is enough.

The tree is private: the state dir and the tree are created 0700, the index, its journal,
the lock and every backup 0600, whatever the umask; a tree an earlier version left 0755
is tightened when a session opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from deploy.errors import Untrusted

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def owner_name(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check(path: Path, what: str, *, folder: bool) -> os.stat_result | None:
    """``path``'s lstat if it is ours and safe, None if it does not exist; else Untrusted."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise Untrusted(f"{path}: {what} is a symlink; refusing to follow it (remove it)")
    kind_ok = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        raise Untrusted(f"{path}: {what} is not a {'folder' if folder else 'regular file'}; "
                        "refusing it")
    if st.st_uid != os.geteuid():
        raise Untrusted(f"{path}: {what} is owned by {owner_name(st.st_uid)}, not by "
                        f"{owner_name(os.geteuid())} who runs this; refusing to use it")
    if st.st_mode & 0o022:
        who = "group and others" if st.st_mode & 0o022 == 0o022 else \
            "its group" if st.st_mode & 0o020 else "others"
        raise Untrusted(f"{path}: {what} is writable by {who} (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it (chmod go-w)")
    return st


def check_state_dir(state_dir: Path) -> None:
    """The folder holding the tree: ours or root's, and not writable by anyone else (else
    another user could swap the tree between two calls)."""
    try:
        st = os.lstat(state_dir)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        st = os.stat(state_dir)  # a symlinked ~/.claude-pm is the user's own choice
    if st.st_uid not in (os.geteuid(), 0):
        raise Untrusted(f"{state_dir}: state dir is owned by {owner_name(st.st_uid)}; "
                        "refusing to keep backups in it")
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise Untrusted(f"{state_dir}: state dir is writable by others (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}); refusing to keep backups in it")


def check_tree(tree: Path, folders: tuple[str, ...], nested: tuple[str, ...],
               files: tuple[str, ...]) -> bool:
    """Check the tree, its category folders (and the subfolders of ``nested`` ones), the
    index, its journal and the lock; returns whether the tree exists."""
    check_state_dir(tree.parent)
    if check(tree, "backup tree", folder=True) is None:
        return False
    for name in folders:
        folder = tree / name
        if check(folder, "backup folder", folder=True) is None or name not in nested:
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) or entry.is_symlink():
                    check(Path(entry.path), "backup folder", folder=True)
    for name in files:
        check(tree / name, "index file" if name.startswith("index") else "lock file",
              folder=False)
    return True


def tighten(path: Path, mode: int) -> None:
    """Give our own file or folder ``mode`` if it is looser (a tree of an earlier version)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, mode)
