"""Issue 13, "Integrity": ``backups.verify`` names every kind of damage to the tree and its
index, and ``backups.reindex`` rebuilds a lost or corrupt index from the tree, all or
nothing under SIGKILL. Each faulty tree counts in the reliability ledger."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv
from tests.reliability.harness import Outcome, cli


def released(root: Path) -> Path:
    """Two releases and a bump (backups in every category, parents in two folders); the tree."""
    harness.base_project(root)
    harness.must(harness.run_task(root, "deploy"), "deploy")
    harness.edit_sources(root)
    harness.must(harness.run_task(root, "deploy"), "second deploy")
    harness.must(harness.run_task(root, "versions.bump", subsystem="memory"), "versions.bump")
    return root / "state" / "backups"


def listed(root: Path) -> dict[str, dict[str, object]]:
    """``backups.list --json``, by backup path relative to the tree: category, target, sha256."""
    out = cli(root, "backups.list", {"json_": True})
    assert out.code == 0, out.stderr
    tree = root / "state" / "backups"
    return {str(Path(b["path"]).relative_to(tree)): {k: b[k] for k in ("category", "target",
                                                                       "sha256", "size")}
            for b in json.loads(out.stdout)["backups"]}


def verify_json(root: Path, **kwargs: object) -> tuple[Outcome, dict[str, object]]:
    out = cli(root, "backups.verify", {"json_": True, **kwargs})
    return out, json.loads(out.stdout) if out.stdout.strip() else {}


def backup_of(tree: Path, pattern: str) -> tuple[Path, int]:
    """The newest backup file matching ``pattern`` and its row's id."""
    rows = [r for r in inv.read_rows(tree) or () if r["backup"]
            and re.search(pattern, str(r["backup"])) and r["state"] in inv.BACKED_STATES]
    row = rows[-1]
    return tree / str(row["backup"]), int(str(row["seq"]))


def last_verify(tree: Path) -> dict[str, object] | None:
    db = sqlite3.connect(f"{(tree / 'index.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'last_verify'").fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def damage(tree: Path, kind: str) -> tuple[Path, int | None, bool]:
    """Damage the tree one way; returns the path verify must name, its row id, and whether
    the index stays healthy (so the verify records itself)."""
    if kind == "missing":
        path, seq = backup_of(tree, r"^scripts/alpha_backup_")
        path.unlink()
        return path, seq, True
    if kind == "corrupt":
        path, seq = backup_of(tree, r"^templates/agents/")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        return path, seq, True
    if kind == "orphan":
        path = tree / "scripts" / "stray"
        path.write_bytes(b"dropped here by hand\n")
        path.chmod(0o600)
        return path, None, True
    if kind == "orphan-pruned":
        # A prune whose unlink failed: the row says pruned, the file is still there.
        path, seq = backup_of(tree, r"^versions/")
        db = sqlite3.connect(tree / "index.sqlite")
        db.execute("UPDATE changes SET pruned = 1 WHERE seq = ?", (seq,))
        db.commit()
        db.close()
        return path, seq, True
    index = tree / "index.sqlite"
    if kind == "index-garbage":
        index.write_bytes(random.Random(13).randbytes(index.stat().st_size))
    elif kind == "index-truncated":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 3])
    else:
        index.unlink()
    return index, None, False


@pytest.mark.parametrize("kind", [
    pytest.param("missing", id="missing"), pytest.param("corrupt", id="corrupt"),
    pytest.param("orphan", id="orphan-stray-file"),
    pytest.param("orphan-pruned", id="orphan-pruned-row"),
    pytest.param("index-garbage", id="index-garbage"),
    pytest.param("index-truncated", id="index-truncated"),
    pytest.param("index-lost", id="index-lost")])
def test_verify_names_each_kind_of_problem(tmp_path: Path, kind: str) -> None:
    """One damage at a time: verify exits 1 with one error line naming the file, the JSON
    names it with its kind and row id; a healthy index records the verify, a broken one is
    left byte for byte as it was."""
    root = tmp_path / "p"
    tree = released(root)
    path, seq, healthy = damage(tree, kind)
    before = inv.file_states(root, exclude=())

    out, doc = verify_json(root)

    want = kind.split("-")[0]
    problems = [p for p in doc.get("problems", []) if isinstance(p, dict)]
    found = inv.check_clear_error(out.code, out.stderr, names=(str(path),))
    if out.code != 1:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}, want 1"))
    if not any(p["kind"] == want and p["path"] == str(path) and p["backup_id"] == seq
               and p["message"] == f"{path}: {p['detail']}" for p in problems):
        found.append(inv.Violation(inv.INDEX, f"no {want} problem for {path}: {problems}"))
    if want == "index":
        orphans = {p["path"] for p in problems if p["kind"] == "orphan"}
        files = {str(f) for f in tree.rglob("*") if f.is_file() and f.parent != tree}
        if orphans != files:
            found.append(inv.Violation(inv.INDEX, f"orphans {orphans} != the tree's {files}"))
    else:
        others = [p for p in problems if p["path"] != str(path)]
        if others:
            found.append(inv.Violation(inv.INDEX, f"problems beyond the damage: {others}"))
    now = inv.file_states(root, exclude=())
    if healthy:
        recorded = last_verify(tree)
        if not recorded or recorded["ok"] or recorded["kinds"] != {want: 1}:
            found.append(inv.Violation(inv.INDEX, f"last verify recorded as {recorded}"))
        # The record, and the lock's holder line: a verify of a healthy index is a session.
        written = ("state/backups/index.sqlite", "state/backups/lock")
        now = {k: v for k, v in now.items() if k not in written}
        before = {k: v for k, v in before.items() if k not in written}
    if now != before:
        changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        found.append(inv.Violation(inv.CLEAN, f"verify changed {changed}"))
    found += inv.check_clean(root, tree)
    ledger.record(f"integrity: verify finds {kind}", found)
    assert found == [], "\n".join(map(str, found))


@pytest.mark.parametrize("damaged", ["lost", "garbage", "truncated"])
def test_reindex_rebuilds_the_index(tmp_path: Path, damaged: str) -> None:
    """After the index was lost or corrupted, reindex lists every backup again (a corrupt
    index moved aside beside the tree), a rollback --to restores a script byte for byte, and
    the parents' CLAUDE.md backups (two parents configured) are reported, not recorded."""
    root = tmp_path / "p"
    tree = released(root)
    before = listed(root)
    alpha, _seq = backup_of(tree, r"^scripts/alpha_backup_")
    old_alpha = alpha.read_bytes()
    index = tree / "index.sqlite"
    bad = b""
    if damaged == "lost":
        index.unlink()
    else:
        data = index.read_bytes()
        bad = random.Random(7).randbytes(len(data)) if damaged == "garbage" \
            else data[: len(data) // 3]
        index.write_bytes(bad)

    out = cli(root, "backups.reindex", {"json_": True})

    found: list[inv.Violation] = []
    doc = json.loads(out.stdout) if out.code == 0 else {}
    if out.code != 0:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"reindex exit {out.code}: {out.stderr}"))
    parents = {k for k in before if k.startswith("parent_directory_manager/")}
    after = listed(root) if out.code == 0 else {}
    want = {k: v for k, v in before.items() if k not in parents}
    if after != want:
        found.append(inv.Violation(inv.INDEX, f"listed after reindex: {sorted(after)}, "
                                   f"want {sorted(want)}"))
    unrecorded = {str(Path(u["path"]).relative_to(tree)): u["reason"]
                  for u in doc.get("unrecorded", [])}
    if set(unrecorded) != parents or not all("cannot tell which" in r
                                             for r in unrecorded.values()):
        found.append(inv.Violation(inv.INDEX, f"unrecorded {unrecorded}, want {parents}"))
    aside = sorted((root / "state").glob("index.sqlite.corrupt-*"))
    if damaged == "lost" and (aside or doc.get("moved_aside")):
        found.append(inv.Violation(inv.CLEAN, f"a lost index moved something aside: {aside}"))
    if damaged != "lost" and (len(aside) != 1 or aside[0].read_bytes() != bad
                              or doc.get("moved_aside") != str(aside[0])):
        found.append(inv.Violation(inv.NO_LOSS, f"the corrupt index is not kept aside: {aside}"))
    extra = {p.name for p in tree.iterdir()} - {"index.sqlite", "lock", "scripts", "versions",
                                                 "templates", "framework",
                                                 "parent_directory_manager"}
    if extra:
        found.append(inv.Violation(inv.CLEAN, f"the tree holds more than it may: {extra}"))
    found += inv.check_index(tree, allow_running=False) + inv.check_clean(root, tree)
    ids = {str(Path(c["backup"]).relative_to(tree)): c["backup_id"] for c in doc.get("changes", [])}
    step = cli(root, "rollback.scripts")
    if step.code != 0 or "nothing to roll back" not in step.stdout:
        found.append(inv.Violation(inv.RESTORES, f"a step-back rollback picked a reindexed "
                                   f"row: {step.stdout} {step.stderr}"))
    restore = cli(root, "rollback.scripts", {"to": ids.get(str(alpha.relative_to(tree)))})
    target = root / "target" / "bin" / "alpha"
    if restore.code != 0 or target.read_bytes() != old_alpha \
            or target.stat().st_mode & 0o777 != 0o755:
        found.append(inv.Violation(inv.RESTORES, f"rollback.scripts --to: exit {restore.code} "
                                   f"{restore.stderr}; alpha holds {target.read_bytes()!r}"))
    ledger.record(f"integrity: index {damaged}, then reindex", found)
    assert found == [], "\n".join(map(str, found))


# -- SIGKILL during reindex -------------------------------------------------------------------
SCRIPTS = 1000


def many_backups(root: Path) -> Path:
    """SCRIPTS scripts deployed twice (SCRIPTS backups), then the index lost; the tree."""
    root.mkdir(parents=True)
    (root / "home").mkdir()
    harness.write_files(root, {"deploy.toml": '[tool.deploy]\nstate_dir = "state"\n'
                               '[tool.deploy.scripts]\nsource = "src"\ntarget = "target/bin"\n'})
    for version in (1, 2):
        harness.write_files(root, {f"src/s{i:04d}": harness.script(f"s{i} v{version}", i % 300)
                                   for i in range(SCRIPTS)})
        harness.must(harness.run_task(root, "deploy.scripts"), f"deploy {version}")
    tree = root / "state" / "backups"
    (tree / "index.sqlite").unlink()
    return tree


def start_reindex(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(harness.cli_command("backups.reindex"), cwd=root,
                            env=harness.cli_env(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def tables(tree: Path) -> set[str]:
    db = inv.open_index(tree)
    if db is None:
        return set()
    try:
        return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = "
                                              "'table' AND name NOT LIKE 'sqlite_%'")}
    finally:
        db.close()


def reindex_rows(tree: Path) -> int:
    """The reindexed rows; none in an index a kill left without tables (created, not
    filled: every table comes in one transaction)."""
    if "changes" not in tables(tree):
        return 0
    return sum(1 for r in inv.read_rows(tree) or () if r["state"] == "imported")


def after_kill(root: Path, tree: Path) -> tuple[str, list[inv.Violation]]:
    """What a kill left (no row or every row), then a rerun, verify and the listing."""
    found: list[inv.Violation] = []
    have = tables(tree)
    if have and not {"meta", "runs", "changes", "renders", "template_code"} <= have:
        found.append(inv.Violation(inv.INDEX, f"a kill left some of the tables: {have}"))
    rows = reindex_rows(tree)
    runs = inv.read_runs(tree) if "runs" in have else []
    left = "all rows" if rows == SCRIPTS else "no row" if rows == 0 else f"{rows} rows"
    if not (tree / "index.sqlite").exists():
        left = "no index"
    elif not have:
        left = "an index without tables (or the corrupt one)"
    if (tree / "index.sqlite-journal").exists():
        left += ", a hot journal"
    if list(tree.parent.glob("index.sqlite.corrupt-*")):
        left += ", the corrupt index moved aside"
    if rows not in (0, SCRIPTS) or len(runs) != (1 if rows else 0):
        found.append(inv.Violation(inv.INDEX, f"a kill left {rows} rows in {len(runs)} runs"))
    if have:
        found += inv.check_index(tree, allow_running=False)
    rerun = cli(root, "backups.reindex")
    refused = rerun.code == 2 and "healthy" in rerun.stderr
    if not (rerun.code == 0 or (refused and rows == SCRIPTS)):
        found.append(inv.Violation(inv.CLEAN, f"rerun after a kill ({left}): exit {rerun.code}"
                                   f" {rerun.stderr.strip()}"))
    check = cli(root, "backups.verify")
    if check.code != 0:
        found.append(inv.Violation(inv.INDEX, f"verify after the rerun: {check.stderr.strip()}"))
    if reindex_rows(tree) != SCRIPTS or len(listed(root)) != SCRIPTS:
        found.append(inv.Violation(inv.INDEX, f"{reindex_rows(tree)} rows after the rerun"))
    found += inv.check_index(tree, allow_running=False) + inv.check_clean(root, tree)
    return left, found


@pytest.mark.parametrize("kills", [pytest.param(8, id="8"),
                                   pytest.param(40, id="40", marks=pytest.mark.slow)])
@pytest.mark.parametrize("damaged", ["lost", "garbage"])
def test_sigkill_during_reindex_leaves_no_row_or_all(tmp_path: Path, kills: int,
                                                     damaged: str) -> None:
    """SIGKILL at a random moment after reindex took the lock, again and again: the index
    holds none of the run's rows or all of them, and a rerun (then verify) succeeds."""
    golden = tmp_path / "golden"
    tree = many_backups(golden)
    if damaged == "garbage":
        (tree / "index.sqlite").write_bytes(random.Random(1).randbytes(64 << 10))
    root = tmp_path / "p"
    shutil.copytree(golden, root, symlinks=True)
    proc = start_reindex(root)
    held = harness.holding_lock(proc, root / "state" / "backups" / "lock")
    _, err = proc.communicate()
    longest = time.monotonic() - held
    assert proc.returncode == 0, err
    rng = random.Random(13)
    outcomes: dict[str, int] = {}
    problems: list[str] = []
    fired = 0
    for attempt in range(kills * 3):
        if fired >= kills:
            break
        shutil.rmtree(root)
        shutil.copytree(golden, root, symlinks=True)
        proc = start_reindex(root)
        harness.holding_lock(proc, root / "state" / "backups" / "lock")
        time.sleep(rng.uniform(0, longest))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            continue  # it finished first: not a fault
        fired += 1
        left, found = after_kill(root, root / "state" / "backups")
        outcomes[left] = outcomes.get(left, 0) + 1
        ledger.record("random SIGKILL (backups.reindex)", found)
        problems += [f"kill {attempt} ({left}): {v}" for v in found]

    print(f"SIGKILL during reindex ({damaged} index): {outcomes}")
    assert problems == [], "\n".join(problems[:10])
    assert fired >= kills, f"only {fired} of {kills} kills landed before the run ended"


def test_the_index_tables_come_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Creating the index is one transaction: a failure after the first CREATE leaves no
    table at all (a reindex killed between two CREATEs left ``runs`` without ``changes``,
    and every read of the index failed)."""
    from deploy.store.index import Index, IndexError_, db

    monkeypatch.setattr(db, "SCHEMA", db.SCHEMA + "\nCREATE TABLE runs (id INTEGER);\n")
    path = tmp_path / "index.sqlite"

    with pytest.raises(IndexError_):
        Index(path)

    with closing(sqlite3.connect(path)) as db:
        left = db.execute("SELECT name FROM sqlite_master").fetchall()
    assert left == []
