"""Runs racing for one state dir: every run is serialized by the lock and all or nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

NAMES = ("one", "two", "three")


def config(source: str) -> str:
    return (f'[tool.deploy]\nstate_dir = "state"\n[tool.deploy.scripts]\nsource = "{source}"\n'
            'target = "target/bin"\n')


def version(i: int, name: str) -> bytes:
    return harness.script(f"{name} version {i}", 2000 * i)


def make(root: Path, versions: int) -> dict[str, dict[int, str]]:
    """One source folder and config per version; sha256 of each script by version."""
    shas: dict[str, dict[int, str]] = {n: {} for n in NAMES}
    (root / "home").mkdir(parents=True, exist_ok=True)
    for i in range(versions):
        harness.write_files(root, {f"cfg{i}.toml": config(f"src{i}")})
        for name in NAMES:
            harness.write_files(root, {f"src{i}/{name}": version(i, name)})
            shas[name][i] = inv.sha256_file(root / f"src{i}" / name)
    return shas


def start(root: Path, i: int, task: str = "deploy.scripts",
          wait: int = 60) -> subprocess.Popen[str]:
    env = harness.cli_env(root, {"DEPLOY_CONFIG": str(root / f"cfg{i}.toml")})
    return subprocess.Popen(harness.cli_command(task, {"wait": wait}), cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def one_version(root: Path, shas: dict[str, dict[int, str]]) -> list[inv.Violation]:
    """Every target holds the same version of its script (or none is deployed)."""
    held = set()
    for name in NAMES:
        path = root / "target" / "bin" / name
        if not path.exists():
            held.add(None)
            continue
        sha = inv.sha256_file(path)
        match = [i for i, s in shas[name].items() if s == sha]
        if not match:
            return [inv.Violation(inv.NO_TORN, f"{name} holds bytes of no version")]
        held.add(match[0])
    if len(held) != 1:
        return [inv.Violation(inv.NO_TORN, f"targets hold a mix of versions: {held}")]
    return []


def backups_real(root: Path, shas: dict[str, dict[int, str]]) -> list[inv.Violation]:
    """Every backup holds one real earlier state of its script."""
    found = []
    for row in inv.read_rows(root / "state" / "backups") or ():
        if not row["backup"]:
            continue
        name = Path(str(row["target"])).name
        sha = inv.sha256_file(root / "state" / "backups" / str(row["backup"]))
        if sha not in shas[name].values():
            found.append(inv.Violation(inv.NO_LOSS, f"backup {row['backup']} holds no version"))
    return found


def test_eight_deploys_at_once(tmp_path: Path) -> None:
    """Eight deploys of different versions at once, --wait 60: one version wins whole, seqs
    have no gap or duplicate, every backup is a real earlier state."""
    shas = make(tmp_path, 8)

    procs = [start(tmp_path, i) for i in range(8)]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=120)]]

    found = [inv.Violation(inv.CLEAN, f"exit {code}: {err}") for code, err in results if code]
    found += one_version(tmp_path, shas) + backups_real(tmp_path, shas)
    found += inv.check_index(tmp_path / "state" / "backups", allow_running=False)
    found += inv.check_clean(tmp_path, tmp_path / "state" / "backups")
    runs = inv.read_runs(tmp_path / "state" / "backups")
    ledger.record("concurrency: 8 deploys at once", found, injected=8)
    assert not found, "\n".join(map(str, found))
    assert len(runs) == 8 and all(r["state"] == "done" for r in runs)


def test_second_run_without_wait_exits_4_naming_the_holder(tmp_path: Path) -> None:
    """While one process holds the lock, a run with --wait 0 exits 4 naming its pid."""
    make(tmp_path, 1)
    (tmp_path / "state" / "backups").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from deploy.store import lock; "
         "cm = lock.hold(Path(sys.argv[1]), command='holder', started='now'); "
         "cm.__enter__(); print('ready', flush=True); time.sleep(60)",
         str(tmp_path / "state" / "backups" / "lock")],
        cwd=harness.REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        before = inv.file_states(tmp_path)

        out = harness.cli(tmp_path, "deploy.scripts", {"wait": 0},
                          env={"DEPLOY_CONFIG": str(tmp_path / "cfg0.toml")})
    finally:
        holder.kill()
        holder.communicate()

    found = inv.check_clear_error(out.code, out.stderr, names=(str(tmp_path),),
                                  causes=(f"pid {holder.pid}",))
    ledger.record("concurrency: lock held, --wait 0", found)
    assert out.code == 4, out.stderr
    assert not found, found
    assert inv.file_states(tmp_path) == before


def use_version(root: Path, i: int) -> str:
    """Point the one project's source folder at version ``i``; returns its config's name.

    Deploy and rollback must run in one project (one config file): a step-back rollback
    sees only its own project's runs."""
    harness.write_files(root, {"cfg.toml": config("src")})
    link = root / "src"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(root / f"src{i}")
    return "cfg.toml"


def race(root: Path, shas: dict[str, dict[int, str]], rounds: int) -> list[inv.Violation]:
    found: list[inv.Violation] = []
    env = {"DEPLOY_CONFIG": str(root / use_version(root, 0))}
    for r in range(rounds):
        # Deploy version r+1 while rolling back the deploy of version r.
        use_version(root, r + 1)
        deploy = subprocess.Popen(harness.cli_command("deploy.scripts", {"wait": 30}), cwd=root,
                                  env=harness.cli_env(root, env), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        rollback = subprocess.Popen(harness.cli_command("rollback.scripts", {"wait": 30}),
                                    cwd=root, env=harness.cli_env(root, env),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for proc in (deploy, rollback):
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                found.append(inv.Violation(inv.CLEAN, f"round {r}: exit {proc.returncode}: {err}"))
        found += one_version(root, shas)
        found += inv.check_index(root / "state" / "backups", allow_running=False)
        found += inv.check_clean(root, root / "state" / "backups")
        ledger.record("concurrency: deploy racing rollback", found[-1:] if found else [])
        if found:
            break
        # Whatever won, end the round on version r+1 for the next round's rollback.
        done = harness.cli(root, "deploy.scripts", {}, env=env)
        if done.code != 0:
            found.append(inv.Violation(inv.CLEAN, f"round {r}: redeploy failed: {done.stderr}"))
            break
    return found + backups_real(root, shas)


@pytest.mark.parametrize("rounds", [pytest.param(20, id="20"),
                                    pytest.param(100, id="100", marks=pytest.mark.slow)])
def test_deploy_races_rollback(rounds: int, tmp_path: Path) -> None:
    """A deploy and a rollback started together, again and again: each round ends with one
    version in every target, a consistent index and a free lock."""
    shas = make(tmp_path, rounds + 1)
    assert harness.cli(tmp_path, "deploy.scripts", {}, env={
        "DEPLOY_CONFIG": str(tmp_path / "cfg0.toml")}).code == 0
    started = time.monotonic()

    found = race(tmp_path, shas, rounds)

    assert not found, "\n".join(map(str, found[:10]))
    assert time.monotonic() - started < 600
