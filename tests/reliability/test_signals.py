"""SIGINT, SIGTERM and SIGHUP at random points of a large real run: deferred while the run
changes targets or the index, then handled as a failure (restore, record, exit 128 + N).

After each signal the index must tell the truth (invariant 11 of RELIABILITY.md): every
change row's state matches what its target holds, a run that did not finish left every
target with its old bytes, and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

FILES = 600
LIVE = ("applied", "backed_up")


def config() -> str:
    return ('[tool.deploy]\nstate_dir = "state"\n[tool.deploy.scripts]\nsource = "src"\n'
            'target = "target/bin"\n')


def write_version(root: Path, version: int) -> dict[str, str]:
    """Every script of ``version`` in src/; their sha256 by name."""
    shas = {}
    for i in range(FILES):
        data = harness.script(f"s{i:04d} version {version}", 64 + (i * 7) % 512)
        path = root / "src" / f"s{i:04d}"
        path.write_bytes(data)
        shas[path.name] = hashlib.sha256(data).hexdigest()
    return shas


def targets(root: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for i in range(FILES):
        path = root / "target" / "bin" / f"s{i:04d}"
        out[path.name] = inv.sha256_file(path) if path.exists() else None
    return out


def index_tells_the_truth(root: Path) -> list[inv.Violation]:
    """Invariant 11: for every change row, the target holds what the row's state says, and
    a run that is not ``done`` has no change left live."""
    found = []
    tree = root / "state" / "backups"
    runs = {int(str(r["id"])): str(r["state"]) for r in inv.read_runs(tree)}
    for row in inv.read_rows(tree) or ():
        if int(str(row["run"])) != max(runs):
            continue
        target = Path(str(row["target"]))
        held = inv.sha256_file(target) if target.exists() else None
        live = row["state"] in LIVE and row["undone_by"] is None
        want = row["new_sha256"] if live else row["old_sha256"]
        if held != want:
            found.append(inv.Violation(inv.INDEX, f"{target.name}: row {row['seq']} is "
                                       f"{row['state']} but the target holds other bytes"))
        if live and runs[int(str(row["run"]))] != "done":
            found.append(inv.Violation(inv.INDEX, f"run {row['run']} is "
                                       f"{runs[int(str(row['run']))]} with live row {row['seq']}"))
    return found


def trial(root: Path, version: int, signals: list[int], delay: float) -> list[inv.Violation]:
    """Deploy ``version`` over the one before it, send ``signals`` after ``delay`` seconds
    (50 ms apart, as GitHub Actions escalates), then check every invariant."""
    old = targets(root)
    runs_before = len(inv.read_runs(root / "state" / "backups"))
    new = write_version(root, version)
    child = subprocess.Popen(harness.cli_command("deploy.scripts"), cwd=root,
                             env=harness.cli_env(root), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    for signum in signals:
        if child.poll() is None:
            child.send_signal(signum)
        time.sleep(0.05)
    _out, err = child.communicate(timeout=120)
    found: list[inv.Violation] = []
    code = child.returncode
    allowed = {0, -signals[0], 128 + signals[0], *(128 + s for s in signals),
               *(-s for s in signals)}
    if code == 1 and not err.strip():
        # The signal came while Python and Invoke were still starting, before any task of
        # ours ran: Invoke exits 1 without a word. Only honest if nothing happened at all.
        if len(inv.read_runs(root / "state" / "backups")) != runs_before or \
                targets(root) != old:
            found.append(inv.Violation(inv.CLEAR_ERROR, "exit 1, silent, after a run began"))
    elif code not in allowed:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {code}: {err.strip()[-300:]}"))
    if code > 128:
        found += inv.check_clear_error(code, err, causes=("interrupted",))
    now = targets(root)
    if any(now[n] not in (old[n], new[n]) for n in now):
        found.append(inv.Violation(inv.NO_TORN, "a target holds neither version"))
    runs = inv.read_runs(root / "state" / "backups")
    if runs and runs[-1]["state"] != "done" and now != old:
        found.append(inv.Violation(inv.NO_TORN, f"run {runs[-1]['id']} is "
                                   f"{runs[-1]['state']} but some targets hold new bytes"))
    found += index_tells_the_truth(root)
    found += inv.check_index(root / "state" / "backups", allow_running=code < 0)
    if code >= 0:
        found += inv.check_clean(root, root / "state" / "backups")
    again = harness.cli(root, "deploy.scripts")
    if again.code != 0 or targets(root) != new:
        found.append(inv.Violation(inv.CLEAN, f"the next run failed: {again.stderr.strip()}"))
    return found


def storm(tmp_path: Path, signals: list[int], trials: int, label: str) -> None:
    root = tmp_path
    harness.write_files(root, {"deploy.toml": config()})
    (root / "src").mkdir()
    (root / "home").mkdir(exist_ok=True)
    write_version(root, 0)
    started = time.monotonic()
    assert harness.cli(root, "deploy.scripts").code == 0
    took = time.monotonic() - started
    rng = random.Random(sum(signals) * 1000 + trials)
    problems = []
    for k in range(trials):
        found = trial(root, k + 1, signals, rng.uniform(0.2, 0.2 + 1.5 * took))
        ledger.record(label, found)
        problems += found
    assert problems == []


@pytest.mark.root
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_mid_run_restores_and_records_the_truth(tmp_path: Path, signum: int) -> None:
    """A signal at a random point of a 600-file deploy leaves every target old or new,
    the run recorded truthfully, nothing behind, and exit 128 + N with one error line."""
    storm(tmp_path, [signum], 3, f"signal: {signal.Signals(signum).name} mid-run")


@pytest.mark.slow
def test_signal_storms_as_github_actions_cancels(tmp_path: Path) -> None:
    """Many cancels as GitHub Actions sends them (SIGINT, then SIGTERM 50 ms later), at
    random points of a large run."""
    storm(tmp_path, [signal.SIGINT, signal.SIGTERM], 30, "signal storm: SIGINT then SIGTERM")
