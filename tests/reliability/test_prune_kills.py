"""SIGKILL during ``backups.prune``, through the real CLI (issue 13: "a prune killed at any
point leaves every kept backup restorable and the index true").

A project holds 360 script backups (120 scripts deployed four times), of which a prune with
``max_backups_per_type = 1`` removes 240. It is killed at random moments (8; 60 with
``--runslow``) and, with strace, at chosen unlinks: the journal unlink that commits the
rows as pending, the first, a middle and the last backup file, and the journal unlink
of the commit that marks them pruned.

After each kill: every backup the fault-free prune keeps is still vouched for by the index
and hashes to its sha256; ``backups.verify`` exits 0 (its session finishes the cut-short
prune first); a rerun of the prune leaves exactly the kept backups, no file the index does
not vouch for, no temp file, and a free lock; and a kept backup restores with
``rollback.scripts --to``.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

CLASS = "retention: SIGKILL during prune"
SCRIPTS = 120
STRACE = shutil.which("strace")
HELD = ("applied", "backed_up", "reverted", "imported")


@dataclass
class Project(harness.Golden):
    root: Path
    golden: Path
    kept: dict[int, str]      # backup id -> sha256: what the fault-free prune keeps
    removed: set[int]
    duration: float


def build(root: Path) -> None:
    (root / "home").mkdir(parents=True)
    harness.write_files(root, {"deploy.toml": BASE_CONFIG
                               + "[tool.deploy.backup]\nmax_backups_per_type = 1\n"})
    for version in range(1, 5):
        harness.write_files(root, {f"bin/tool{i:03d}": f"#!/bin/sh\necho {i} {version}\n" * 20
                                   for i in range(SCRIPTS)})
        out = harness.cli(root, "deploy.scripts")
        assert out.code == 0, out.stderr


def held(root: Path) -> dict[int, dict[str, object]]:
    """The rows the index vouches for: id -> row."""
    rows = inv.read_rows(root / "state" / "backups") or []
    return {int(str(r["seq"])): r for r in rows
            if r["backup"] and not r["pruned"] and r["state"] in HELD}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("prune-kills")
    root = base / "p"
    build(root)
    golden = base / "golden"
    shutil.copytree(root, golden, symlinks=True)
    start = time.monotonic()
    done = harness.cli(root, "backups.prune")
    duration = time.monotonic() - start
    assert done.code == 0, done.stderr
    before = set(held(golden))
    kept = {seq: str(r["old_sha256"]) for seq, r in held(root).items()}
    proj = Project(root, golden, kept, before - set(kept), duration)
    assert len(proj.removed) == 2 * SCRIPTS and len(kept) == SCRIPTS
    proj.reset()
    return proj


def after_kill(proj: Project) -> list[inv.Violation]:
    """The checks right after a kill, then after verify and a rerun."""
    found: list[inv.Violation] = []
    rows = held(proj.root)
    for seq, sha in proj.kept.items():
        row = rows.get(seq)
        path = proj.tree / str(row["backup"]) if row else None
        if row is None or path is None or not path.is_file() or inv.sha256_file(path) != sha:
            found.append(inv.Violation(inv.NO_LOSS, f"kept backup {seq} is not vouched for "
                                                    "or does not hash to its sha256"))
    for seq in rows:
        if seq in proj.removed and not (proj.tree / str(rows[seq]["backup"])).is_file():
            found.append(inv.Violation(inv.INDEX, f"row {seq} vouches for a "
                                                             "missing file"))
    verify = harness.cli(proj.root, "backups.verify")
    if verify.code != 0:
        found.append(inv.Violation(inv.INDEX, f"verify after the kill: "
                                                         f"{verify.stdout[-400:]}"))
    again = harness.cli(proj.root, "backups.prune")
    if again.code != 0:
        found.append(inv.Violation(inv.CLEAN, f"the rerun failed: {again.stderr}"))
    if set(held(proj.root)) != set(proj.kept):
        found.append(inv.Violation(inv.INDEX, "the rerun left other backups than "
                                                         "the fault-free prune keeps"))
    found += inv.check_clean(proj.root, proj.tree)
    if harness.cli(proj.root, "backups.verify").code != 0:
        found.append(inv.Violation(inv.INDEX, "verify after the rerun fails"))
    return found


def restores(proj: Project) -> None:
    """A kept backup that is not its target's newest still restores byte for byte."""
    rows = held(proj.root)
    seq = min(proj.kept)
    out = harness.cli(proj.root, "rollback.scripts", {"to": seq, "force": True})
    assert out.code == 0, out.stderr
    target = Path(str(rows[seq]["target"]))
    assert inv.sha256_file(target) == proj.kept[seq]


def kill_at_random(proj: Project, rng: random.Random) -> None:
    cmd = harness.cli_command("backups.prune")
    child = subprocess.Popen(cmd, cwd=proj.root, env=harness.cli_env(proj.root),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.05, proj.duration))
    child.send_signal(signal.SIGKILL)
    child.wait()


@pytest.mark.parametrize("trials", [pytest.param(8, id="8-kills"),
                                    pytest.param(60, id="60-kills", marks=pytest.mark.slow)])
def test_random_kills_during_prune(prepared: Project, trials: int) -> None:
    rng = random.Random(13)
    for _ in range(trials):
        prepared.reset()
        kill_at_random(prepared, rng)
        found = after_kill(prepared)
        ledger.record(CLASS, found)
        assert found == [], found
    restores(prepared)


@pytest.mark.skipif(STRACE is None, reason="needs strace")
@pytest.mark.parametrize("when", [
    pytest.param(1, id="pending-commit"),
    pytest.param(2, id="first-file"),
    pytest.param(2 + SCRIPTS, id="middle-file"),
    pytest.param(1 + 2 * SCRIPTS, id="last-file"),
    pytest.param(2 + 2 * SCRIPTS, id="pruned-commit"),
])
def test_kills_at_each_window_of_prune(prepared: Project, when: int) -> None:
    """The k-th unlink of the prune (journal, backups, journal) is where it dies."""
    prepared.reset()
    assert STRACE is not None

    out = harness.cli(prepared.root, "backups.prune", prefix=[
        STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlink,unlinkat",
        "-e", f"inject=unlink,unlinkat:signal=SIGKILL:when={when}"])
    found = after_kill(prepared)
    ledger.record(CLASS, found)

    assert out.code != 0
    assert found == [], found
