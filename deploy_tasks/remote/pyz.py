"""The host side, shipped with each run: a zipapp built at run time from what is installed.

It holds the ``deploy`` package, this task layer and the pure-Python packages they import on
a host (invoke, jinja2, markupsafe, packaging, merge3), so a host needs only ``python3`` >= 3.11.
Compiled speed-ups are left out (markupsafe falls back to its pure-Python code); byte code
compiled here rides along (used where the host's Python is the same version). It is built
once per command into a private temporary folder, removed at exit, and never committed.
"""

from __future__ import annotations

import atexit
import importlib.util
import marshal
import os
import shutil
import tempfile
import threading
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


def build() -> Shipped:
    """The zipapp, built on first use in this process."""
    global _built
    with _lock:
        if _built is None:
            out = scratch() / "host.pyz"
            with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_DEFLATED,
                                 compresslevel=1) as archive:
                archive.writestr("__main__.py", MAIN)
                for name in PACKAGES:
                    root = _package_root(name)
                    for dirpath, dirnames, filenames in os.walk(root):
                        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                        for file in sorted(filenames):
                            if file.endswith((".py", ".typed")):
                                path = Path(dirpath, file)
                                arcname = f"{name}/{path.relative_to(root).as_posix()}"
                                archive.write(path, arcname)
                                if file.endswith(".py"):
                                    archive.writestr(arcname + "c", _pyc(path, arcname))
            _built = Shipped(out, sha256_file(out))
        return _built
