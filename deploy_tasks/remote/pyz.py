"""The host side, shipped with each run: a zipapp built at run time from what is installed.

It holds the ``deploy`` package, this task layer and the pure-Python packages they import on
a host (invoke, jinja2, markupsafe, packaging, merge3), so a host needs only ``python3`` >= 3.11.
Compiled speed-ups are left out (markupsafe falls back to its pure-Python code); byte code
compiled here rides along (used where the host's Python is the same version). It is never
committed.

Building it (compiling every module, deflating) costs about half a second, so the built
zipapp is kept in this user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``claude-pm-deploy/host-<key>.pyz``), keyed by the sha256 of every file it carries, this
Python's byte-code magic and the entry point: a changed source is a new key. A cached file is
used only while it is a regular file of this user's, in a folder of this user's, neither
writable by group or others; each command copies it into its own private temporary folder
(removed at exit) and ships that copy, whose sha256 the host checks before it runs it.
Entries not used for 30 days are removed.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import marshal
import os
import shutil
import stat
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

from deploy.bundle import sha256_file

PACKAGES = ("deploy", "deploy_tasks", "invoke", "jinja2", "markupsafe", "packaging", "merge3")
MAIN = ("from deploy_tasks.remote.hostside import main\n"
        "raise SystemExit(main())\n")


class Shipped(NamedTuple):
    """A file to send to every host, with its sha256."""

    path: Path
    sha256: str


_lock = threading.Lock()
_built: Shipped | None = None
_scratch: Path | None = None


def scratch() -> Path:
    """A private folder (0700) for what this command sends, removed when it exits."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="claude-pm-deploy-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def _package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed; pip install it")
    return Path(next(iter(spec.submodule_search_locations)))


def _pyc(path: Path, arcname: str) -> bytes:
    """``path`` compiled by this Python, as an unchecked hash-based ``.pyc`` beside its source
    in the zip: zipimport cannot write byte code, so without it a host compiles every module
    on every run. A host whose Python has another magic number ignores it and compiles."""
    source = path.read_bytes()
    code = compile(source, arcname, "exec", dont_inherit=True)
    flags = 0b01  # hash-based, not checked against the source (the zip is checked whole)
    return (importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little")
            + importlib.util.source_hash(source) + marshal.dumps(code))


def sources() -> list[tuple[str, Path]]:
    """(name in the zip, file) of every file the zipapp carries, in order."""
    found = []
    for name in PACKAGES:
        root = _package_root(name)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for file in sorted(filenames):
                if file.endswith((".py", ".typed")):
                    path = Path(dirpath, file)
                    found.append((f"{name}/{path.relative_to(root).as_posix()}", path))
    return found


def cache_key(files: list[tuple[str, Path]]) -> str:
    """What the zipapp of ``files`` is made of: each name and content, the byte-code magic
    of this Python and the entry point."""
    digest = hashlib.sha256(b"claude-pm-deploy host side 1\0" + importlib.util.MAGIC_NUMBER
                            + MAIN.encode())
    for arcname, path in files:
        data = path.read_bytes()
        digest.update(f"\0{arcname}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "claude-pm-deploy"


def _ours(path: Path, kind: int) -> bool:
    """``path`` is of ``kind`` (``stat.S_IFREG``, ``S_IFDIR``), this user's, and writable by
    neither group nor others."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid() \
        and not st.st_mode & 0o022


def _trusted(path: Path) -> bool:
    """A cached file this user may ship: theirs, in a folder of theirs, neither writable by
    group or others."""
    return _ours(path.parent, stat.S_IFDIR) and _ours(path, stat.S_IFREG)


def _write(files: list[tuple[str, Path]], out: Path) -> None:
    """The zipapp of ``files``, the same bytes for the same files (every entry dated
    1980-01-01, mode 0644), so equal installs ship one sha256 that hosts keep once."""

    def put(name: str, data: bytes) -> None:
        entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.external_attr = 0o644 << 16
        archive.writestr(entry, data, compresslevel=1)

    with zipfile.ZipFile(out, "x") as archive:
        put("__main__.py", MAIN.encode())
        for arcname, path in files:
            put(arcname, path.read_bytes())
            if arcname.endswith(".py"):
                put(arcname + "c", _pyc(path, arcname))


def _keep(built: Path, cached: Path) -> None:
    """Put ``built`` in the cache as ``cached`` (atomically; a cache that cannot be written
    is no cache) and drop the entries nobody used for 30 days."""
    from deploy import fsio

    try:
        cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _ours(cached.parent, stat.S_IFDIR):
            return
        fsio.atomic_write(cached, built, 0o600)
        old = time.time() - 30 * 86400
        for entry in cached.parent.glob("host-*.pyz"):
            if entry != cached and entry.lstat().st_mtime < old:
                entry.unlink()
    except OSError:
        pass


def build() -> Shipped:
    """The zipapp, made on first use in this process (from the cache when it holds it)."""
    global _built
    with _lock:
        if _built is None:
            files = sources()
            cached = cache_dir() / f"host-{cache_key(files)[:32]}.pyz"
            out = scratch() / "host.pyz"
            if _trusted(cached):
                shutil.copyfile(cached, out, follow_symlinks=False)
                os.utime(cached)  # used: not one to drop
            else:
                _write(files, out)
                _keep(out, cached)
            _built = Shipped(out, sha256_file(out))
        return _built
