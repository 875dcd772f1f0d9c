"""What a host receives of the project (issue 15): the config and the sources, as bytes.

A bundle is one zip file: ``manifest.json`` (the config's name, and each file's path, sha256
and mode) plus the files. The controller builds it from the checkout; the host checks the whole
file against the sha256 it was given on the command line, then each member against the
manifest, before anything is planned. A half-transferred or altered bundle is refused as a
whole, so a host never plans from bytes it was not sent.

Only sources travel: the config file, the regular files of ``scripts.source``, the version
files of ``versions.dir`` (templates see them), and the folder of each template (Jinja's
``include`` reads beside it). Each must lie in the config's folder, where the host finds it
again under the same relative path. Targets and the state dir are the host's own. The one
exception is the toolkit's own framework template (``framework.template = "bundled"``),
which travels under ``BUNDLED``, a dot-folder that no walked source folder can hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from deploy.config import Config
from deploy.errors import ConfigError, IntegrityError

MANIFEST = "manifest.json"
FORMAT = 1
# A folder walked for templates stops here: a template folder is a handful of files.
MAX_FILES = 10_000
# Where the shipped framework template's folder travels, relative to the config's folder.
BUNDLED = ".claude-pm-deploy-bundled/framework"


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath, name)


def sources(cfg: Config) -> list[Path]:
    """Every file a host needs to plan ``cfg``'s categories, config first, each once."""
    found: dict[Path, None] = {cfg.path.resolve(): None}
    if cfg.scripts_source.is_dir():
        for entry in sorted(os.scandir(cfg.scripts_source), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False):
                found.setdefault(Path(entry.path), None)
    if cfg.versions_dir.is_dir():
        for entry in sorted(os.scandir(cfg.versions_dir), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False) and (
                    entry.name == "VERSION" or entry.name.endswith("_VERSION")):
                found.setdefault(Path(entry.path), None)
    folders = {t.source.parent for t in cfg.templates}
    if cfg.framework_template is not None:
        folders.add(cfg.framework_template.parent)
    for folder in sorted(folders):
        if folder.is_dir():
            for path in _walk(folder):
                found.setdefault(path, None)
                if len(found) > MAX_FILES:
                    raise ConfigError(f"{folder}: more than {MAX_FILES} files to send to the "
                                      "hosts; keep templates in a folder of their own")
    return list(found)


def _relative(path: Path, base: Path) -> str:
    try:
        rel = path.relative_to(base)
    except ValueError:
        raise ConfigError(f"{path}: a source outside the config's folder {base}; with --hosts "
                          "every source must lie in that folder (it is sent to each host "
                          "under the same relative path)") from None
    return rel.as_posix()


def build(cfg: Config, out: Path) -> str:
    """Write ``cfg``'s bundle to ``out`` (a new file); return its sha256."""
    base = cfg.path.resolve().parent
    shipped = (cfg.framework_template.parent
               if cfg.framework_bundled and cfg.framework_template else None)
    entries: dict[str, dict[str, object]] = {}
    with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_STORED) as archive:
        for path in sources(cfg):
            if not _regular(path):
                continue
            if shipped is not None and shipped in path.parents:
                rel = f"{BUNDLED}/{path.relative_to(shipped).as_posix()}"
            else:
                rel = _relative(path, base)
            if rel in entries:
                raise ConfigError(f"{path}: sent to the hosts as {rel}, which is taken; "
                                  "rename it")
            data = path.read_bytes()
            mode = stat.S_IMODE(path.lstat().st_mode) & 0o755
            entries[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "mode": mode}
            archive.writestr(rel, data)
        manifest = {"format": FORMAT, "config": _relative(cfg.path.resolve(), base),
                    "files": entries}
        archive.writestr(MANIFEST, json.dumps(manifest, sort_keys=True))
    return sha256_file(out)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise IntegrityError(f"bundle member {rel!r}: not a relative path inside the bundle")
    return path


def extract(bundle: Path, sha256: str, dest: Path) -> Path:
    """Check ``bundle`` against ``sha256`` and every member against its manifest, then
    write the files under ``dest`` (a new folder, 0700); return the config's path there."""
    found = sha256_file(bundle)
    if found != sha256:
        raise IntegrityError(f"{bundle}: sha256 {found}, expected {sha256}; the bundle was not "
                             "received whole, nothing was applied")
    with zipfile.ZipFile(bundle) as archive:
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (KeyError, ValueError) as err:
            raise IntegrityError(f"{bundle}: no readable {MANIFEST}") from err
        if manifest.get("format") != FORMAT:
            raise IntegrityError(f"{bundle}: bundle format {manifest.get('format')!r}, "
                                 f"this host side reads {FORMAT}")
        files: dict[str, dict[str, object]] = manifest["files"]
        contents = {}
        for rel, meta in files.items():
            _safe(rel)
            data = archive.read(rel)
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise IntegrityError(f"{bundle}: {rel} does not match its sha256 in the "
                                     "manifest; nothing was applied")
            contents[rel] = (data, int(str(meta["mode"])))
    dest.mkdir(mode=0o700)
    for rel, (data, mode) in contents.items():
        path = dest.joinpath(*_safe(rel).parts)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode | 0o600)
    return dest.joinpath(*_safe(str(manifest["config"])).parts)
