"""Real filesystem faults (root only): the backup tree on a full tmpfs, on one out of inodes,
on one remounted read-only, and a target folder the user may not write. Each run must
refuse before any target changes, with one error line naming the folder and the cause."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts and setpriv need root"),
]


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, *, inodes: bool) -> None:
    """Use up the space (or the inodes) of the filesystem holding ``folder``."""
    i = 0
    try:
        while True:
            path = folder / f"filler{i}"
            if inodes:
                path.touch()
            else:
                with open(path, "wb") as handle:
                    handle.write(b"\0" * (1 << 16))
            i += 1
    except OSError as err:
        assert err.errno == errno.ENOSPC, err


def project_on(root: Path) -> None:
    """A scripts project whose first deploy is done, its state dir on whatever is mounted."""
    harness.prep_scripts(root, harness.run_task)


def move_state_to(root: Path, mount: Path) -> None:
    """Put the prepared state dir onto ``mount`` (same path inside the project)."""
    state = root / "state"
    shutil.copytree(state, mount / "state", symlinks=True)
    shutil.rmtree(state)
    state.symlink_to(mount / "state")  # the config names "state"; the tree lives on the mount


def check_refused(root: Path, out: harness.Outcome, before: inv.Files, folder: str,
                  causes: tuple[str, ...], what: str) -> None:
    found = inv.check_clear_error(out.code, out.stderr, names=(folder,), causes=causes)
    found += inv.check_no_torn(before, before, inv.file_states(root))
    ledger.record(f"real fs: {what}", found)
    assert not found, "\n".join(map(str, found))


@pytest.mark.parametrize(("options", "inodes", "causes", "what"), [
    pytest.param("size=1m", False, ("free space", "No space"), "tmpfs full", id="full"),
    pytest.param("size=4m,nr_inodes=64", True, ("inode", "No space"), "out of inodes",
                 id="inodes"),
])
def test_full_backup_tree_refuses_before_writing(tmp_path: Path, options: str, inodes: bool,
                                                 causes: tuple[str, ...], what: str) -> None:
    """A backup tree with no room left: refused before any target changes."""
    root = tmp_path / "p"
    project_on(root)
    with tmpfs(tmp_path / "mnt", options) as mount:
        move_state_to(root, mount)
        fill(mount, inodes=inodes)
        before = inv.file_states(root)

        out = harness.cli(root, "deploy.scripts")

        check_refused(root, out, before, str(mount), causes, what)


def test_read_only_backup_tree_refuses_before_writing(tmp_path: Path) -> None:
    """A backup tree remounted read-only: refused before any target changes."""
    root = tmp_path / "p"
    project_on(root)
    with tmpfs(tmp_path / "mnt", "size=4m") as mount:
        move_state_to(root, mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = inv.file_states(root)

        out = harness.cli(root, "deploy.scripts")

        check_refused(root, out, before, str(mount), ("read-only", "Read-only"),
                      "read-only remount")


def test_read_only_target_folder_names_the_cause(tmp_path: Path) -> None:
    """A target folder on a read-only mount is refused as a read-only file system, not
    as "permission denied" (root may write any folder, so the mode is not the cause)."""
    root = tmp_path / "p"
    harness.base_project(root)
    with tmpfs(root / "target", "size=4m") as mount:
        harness.must(harness.cli(root, "deploy.scripts"), "first deploy")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        harness.write_files(root, {"bin/alpha": harness.script("alpha 2")})
        before = inv.file_states(root)

        out = harness.cli(root, "deploy.scripts")

        check_refused(root, out, before, str(mount / "bin"), ("read-only file system",),
                      "read-only target folder")


def unprivileged_python(site: Path) -> list[str] | None:
    """A python command nobody (65534) can run with our dependencies importable."""
    probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    check = "import invoke, jinja2, packaging, deploy"
    env = {"PYTHONPATH": f"{site}:{harness.REPO}", "HOME": "/", "PATH": os.environ["PATH"]}
    for exe in (sys.executable, shutil.which(f"python{sys.version_info[0]}."
                                             f"{sys.version_info[1]}")):
        if not exe:
            continue
        done = subprocess.run([*probe, exe, "-c", check], env=env, capture_output=True,
                              check=False, cwd="/")
        if done.returncode == 0:
            return [*probe, exe]
    return None


def test_unwritable_target_folder_for_another_user(tmp_path: Path) -> None:
    """Run as nobody: a target folder it may not write is refused before anything changes."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    scratch = Path(tempfile.mkdtemp(prefix="deploy-rel-nobody-", dir="/tmp"))
    try:
        scratch.chmod(0o755)
        site = scratch / "site"
        for module in ("invoke", "jinja2", "markupsafe", "packaging", "merge3"):
            mod = __import__(module)
            src = Path(mod.__file__).parent if mod.__file__.endswith("__init__.py") \
                else Path(mod.__file__)
            dest = site / src.name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dest)
        python = unprivileged_python(site)
        if python is None:
            pytest.skip("no python that user 65534 can run")
        root = scratch / "p"
        harness.base_project(root)
        harness.write_files(root, {"deploy.toml": harness.CONFIG})
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "target" / "bin").mkdir(parents=True)
        (root / "target" / "bin" / "alpha").write_bytes(b"old\n")
        os.chown(root / "home", 65534, 65534)
        (root / "state").mkdir()
        os.chown(root / "state", 65534, 65534)
        before = inv.file_states(root)
        env = {"PYTHONPATH": f"{site}:{harness.REPO}", "HOME": str(root / "home"),
               "PATH": os.environ["PATH"], "DEPLOY_CONFIG": str(root / "deploy.toml"),
               "PYTHONDONTWRITEBYTECODE": "1"}

        done = subprocess.run([*python, "-m", "invoke", "--search-root", str(harness.REPO),
                               "deploy.scripts"], cwd=root, env=env, capture_output=True,
                              text=True, check=False)

        out = harness.Outcome(done.returncode, done.stdout, done.stderr)
        check_refused(root, out, before, str(root / "target" / "bin"),
                      ("permission denied", "not writable"), "target folder not writable")
        assert not (root / "state" / "backups" / "scripts").exists() or \
            not any((root / "state" / "backups" / "scripts").iterdir())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
