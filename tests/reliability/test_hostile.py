"""Other users and planted files: the tree is private, trusts only its owner, and follows
no link (RELIABILITY.md, invariants 7 to 9). Each test plays the other user with real
files of another owner and, where it reads, as ``nobody`` through ``setpriv``."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

NOBODY = 65534
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="other owners and setpriv need root"),
]


def project(root: Path) -> Path:
    harness.base_project(root)
    return root / "state" / "backups"


def as_nobody_can_read(path: Path) -> bool:
    done = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                           "--clear-groups", "cat", str(path)], capture_output=True,
                          check=False)
    return done.returncode == 0


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_nothing_stored_is_readable_by_another_user(tmp_path: Path, umask: int) -> None:
    """Whatever the umask, the tree is 0700 and the index, lock and backups 0600: a 0600
    secret's backup, and its render in the index, are unreadable by ``nobody``."""
    tree = project(tmp_path)
    secret = tmp_path / "target" / "memory.yaml"
    old = os.umask(umask)
    try:
        harness.must(harness.cli(tmp_path, "deploy"), "first deploy")
        secret.chmod(0o600)
        harness.write_files(tmp_path, {"tpl/memory.yaml.j2": "secret: {{ project_name }}\n"})
        harness.must(harness.cli(tmp_path, "deploy", {"on_conflict": "overwrite"}), "second")
    finally:
        os.umask(old)

    modes = {p.relative_to(tree): stat.S_IMODE(p.stat().st_mode)
             for p in [tree, *tree.rglob("*")]}
    found = [inv.Violation("nothing leaks", f"{rel} is {mode:04o}")
             for rel, mode in modes.items()
             if mode != (0o700 if (tree / rel).is_dir() else 0o600)]
    readable = [p for p in [tree / "index.sqlite", *tree.rglob("*.backup")]
                if as_nobody_can_read(p)]
    found += [inv.Violation("nothing leaks", f"nobody reads {p}") for p in readable]
    ledger.record("hostile: private tree under umask", found)
    assert found == []


def test_a_setuid_target_backs_up_as_plain_data(tmp_path: Path) -> None:
    """A setuid script's backup carries no exec or set-id bits, and a rollback gives the
    target its exact mode back."""
    tree = project(tmp_path)
    harness.must(harness.cli(tmp_path, "deploy.scripts"), "first deploy")
    target = tmp_path / "target" / "bin" / "alpha"
    target.chmod(0o4755)
    harness.write_files(tmp_path, {"bin/alpha": harness.script("alpha 2")})
    harness.must(harness.cli(tmp_path, "deploy.scripts"), "second deploy")

    backups = list((tree / "scripts").glob("alpha_backup_*"))
    modes = sorted(stat.S_IMODE(b.stat().st_mode) for b in backups)
    harness.must(harness.cli(tmp_path, "rollback.scripts"), "rollback")
    found = [inv.Violation("nothing is handed over", f"backup mode {m:04o}")
             for m in modes if m != 0o600]
    if stat.S_IMODE(target.stat().st_mode) != 0o4755:
        found.append(inv.Violation("nothing is handed over",
                                   f"restored mode {stat.S_IMODE(target.stat().st_mode):04o}"))
    ledger.record("hostile: set-id target", found)
    assert backups and found == []


@pytest.mark.parametrize("what", ["tree", "folder", "index", "group-writable"])
def test_a_tree_another_user_prepared_is_refused(tmp_path: Path, what: str) -> None:
    """A tree, a folder or an index that another user owns (or a tree others may write)
    is refused with exit 2 naming it and its owner, before anything is read or written."""
    tree = project(tmp_path)
    harness.must(harness.cli(tmp_path, "deploy.scripts"), "first deploy")
    victim = {"tree": tree, "folder": tree / "scripts", "index": tree / "index.sqlite",
              "group-writable": tree}[what]
    if what == "group-writable":
        victim.chmod(0o770)
    else:
        os.chown(victim, NOBODY, NOBODY)
    before = inv.file_states(tmp_path, exclude=())
    harness.write_files(tmp_path, {"bin/alpha": harness.script("alpha 2")})

    outcomes = [harness.cli(tmp_path, task) for task in ("deploy.scripts", "rollback.scripts",
                                                          "history")]
    found = []
    for out in outcomes:
        found += inv.check_clear_error(out.code, out.stderr, names=(str(victim),),
                                       causes=("owned by nobody", "writable by"))
        if out.code != 2:
            found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}, want 2"))
    after = inv.file_states(tmp_path, exclude=())
    changed = [p for p in before if p != "bin/alpha" and before[p] != after.get(p)]
    found += [inv.Violation("nothing is followed", f"{p} changed") for p in changed]
    ledger.record("hostile: tree prepared by another user", found)
    assert found == []


def test_a_symlink_planted_at_the_index_is_never_followed(tmp_path: Path) -> None:
    """A link planted at backups/index.sqlite (or its journal) is refused and its victim
    keeps its bytes."""
    tree = project(tmp_path)
    harness.must(harness.cli(tmp_path, "deploy.scripts"), "first deploy")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (tree / "index.sqlite").unlink()
    (tree / "index.sqlite").symlink_to(victim)

    outcomes = [harness.cli(tmp_path, t) for t in ("deploy.scripts", "history")]
    found = []
    for out in outcomes:
        found += inv.check_clear_error(out.code, out.stderr, names=(str(tree),),
                                       causes=("symlink",))
    if victim.read_bytes() != b"precious\n":
        found.append(inv.Violation("nothing is followed", "the link's victim was written"))
    ledger.record("hostile: symlink planted in the tree", found)
    assert found == []


def test_an_include_never_follows_a_planted_link_out_of_its_folder(tmp_path: Path) -> None:
    """``{% include %}`` of a symlink to a root-only file is refused (exit 2) and the
    secret reaches no target, backup or index row."""
    project(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("root-only secret\n")
    secret.chmod(0o600)
    (tmp_path / "tpl" / "part.txt").symlink_to(secret)
    harness.write_files(tmp_path, {"tpl/agents.md.j2": "{% include 'part.txt' %}\n"})

    out = harness.cli(tmp_path, "deploy.templates")

    found = inv.check_clear_error(out.code, out.stderr, names=(str(tmp_path / "tpl"),),
                                  causes=("symlink",))
    if out.code != 2:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}, want 2"))
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()
              and p != secret and b"root-only secret" in p.read_bytes()]
    found += [inv.Violation("nothing is followed", f"the secret is in {p}") for p in leaked]
    ledger.record("hostile: symlinked include", found)
    assert found == []


@pytest.mark.parametrize(("task", "where", "code"), [
    pytest.param("deploy.scripts", "target/bin/alpha", 2, id="script-target"),
    pytest.param("deploy.templates", "tpl/agents.md.j2", 2, id="template-source"),
    pytest.param("deploy.framework", "tpl/CLAUDE.md", 2, id="framework-template"),
    pytest.param("versions.bump memory", "versions/MEMORY_VERSION", 2, id="version-file"),
    pytest.param("backups.verify", "BACKUP", 1, id="backup"),
])
def test_a_fifo_where_a_file_belongs_is_refused_without_blocking(
        tmp_path: Path, task: str, where: str, code: int) -> None:
    """A FIFO in place of a target, a template, a version file or a backup gives a clear
    error within seconds (exit 2 for config-given paths, 1 for a backup); it never hangs."""
    tree = project(tmp_path)
    harness.must(harness.cli(tmp_path, "deploy"), "first deploy")
    harness.write_files(tmp_path, {"bin/alpha": harness.script("alpha 2")})
    harness.must(harness.cli(tmp_path, "deploy.scripts"), "second deploy")
    path = next((tree / "scripts").glob("alpha_backup_*")) if where == "BACKUP" \
        else tmp_path / where
    path.unlink()
    os.mkfifo(path)
    name, *args = task.split()

    try:
        out = harness.cli(tmp_path, name, {"subsystem": args[0]} if args else None, timeout=20)
    except subprocess.TimeoutExpired:
        out = harness.Outcome(-1, "", "timed out: blocked on the FIFO")

    found = inv.check_clear_error(out.code, out.stderr, names=(str(path),))
    if out.code != code:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}, want {code}: "
                                   f"{out.stderr.strip()}"))
    ledger.record("odd files: FIFO where a file belongs", found)
    assert found == []
