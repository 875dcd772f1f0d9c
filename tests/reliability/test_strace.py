"""Faults in the real CLI, injected by strace: EIO and SIGKILL at the N-th write-side syscall,
for every N until the run finishes untouched; random SIGKILLs of running deploys and
rollbacks, each followed by a recovery run (sometimes killed too).
"""

from __future__ import annotations

import functools
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv
from tests.reliability.harness import BY_NAME, Outcome, Prepared, cli, prepare, undo_since

pytestmark = pytest.mark.skipif(shutil.which("strace") is None,
                                reason="strace is not installed (apt-get install strace)")

MAX_N = 300
# The write side of a run: our own writes, fsyncs, renames, links and unlinks, and SQLite's.
DEFAULT_CALLS = {
    "deploy.scripts": ("fsync", "fdatasync", "rename", "link", "unlink"),
    "rollback.scripts": ("fsync", "rename"),
}
SLOW_CALLS = ("write", "pwrite64", "fsync", "fdatasync", "rename", "link", "unlink",
              "ftruncate", "mkdir", "openat")


@dataclass
class Tally:
    faulted: int = 0
    kept: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, label: str, found: list[inv.Violation]) -> None:
        self.faulted += 1
        self.kept += not found
        self.lost += sum(v.bytes_lost for v in found)
        self.problems += [f"{label}: {v}" for v in found]


def strace_prefix(log: Path, call: str, action: str, n: int) -> list[str]:
    return ["strace", "-f", "-qq", "-y", "-o", str(log), "-e", f"trace={call}",
            "-e", f"inject={call}:{action}:when={n}"]


def injected_line(log: Path) -> str | None:
    text = log.read_text(errors="replace") if log.exists() else ""
    return next((line for line in text.splitlines() if "INJECTED" in line), None)


def killed(out: Outcome) -> bool:
    return out.code in (-signal.SIGKILL, 128 + signal.SIGKILL)


def startup_fault(stderr: str) -> bool:
    """Whether a fault broke Python's or Invoke's own start-up (an ``openat`` of the
    standard library, say), before any code of ours ran: no error line of ours can follow.
    Every other invariant is still checked for such runs."""
    if "Fatal Python error" in stderr or "No module named invoke" in stderr:
        return True
    if "Traceback" not in stderr:
        return False
    # An import that failed inside Python's import machinery (a module of the standard
    # library or of Invoke could not be opened) while Invoke loaded the task modules.
    if "<frozen importlib._bootstrap" in stderr:
        return True
    last = stderr.strip().splitlines()[-1]
    if last.startswith(("ImportError", "ModuleNotFoundError")):
        return True  # a library (Invoke pulls in asyncio via unittest.mock) failed to load
    ours = ("/deploy/", "/deploy_tasks/", "/tasks.py")
    return not any(mark in stderr for mark in ours)


CAUSES = {
    "error=EIO": ("Input/output error", "disk I/O error"),
    # SQLite reports an ENOSPC from fdatasync or unlink as its generic "disk I/O error".
    "error=ENOSPC": ("No space left on device", "database or disk is full", "disk I/O error"),
}


def after_fault(prep: Prepared, out: Outcome, line: str | None, *, kill: bool,
                retry_kill: tuple[str, int] | None = None,
                causes: tuple[str, ...] = CAUSES["error=EIO"]) -> list[inv.Violation]:
    """Invariants after one faulty CLI run, a recovery run (itself killed when
    ``retry_kill``), and rolling back everything since."""
    now = prep.files()
    found = inv.check_no_torn(prep.before, prep.new, now)
    if not kill:
        rows = inv.read_rows(prep.tree)
        found += inv.check_no_loss(prep.root, prep.before, prep.new, now, rows, prep.tree)
        if out.code != 0 and startup_fault(out.stderr):
            pass  # the interpreter or Invoke failed before any of our code ran
        elif out.code != 0:
            ours = line is not None and str(prep.root) in line
            found += inv.check_clear_error(out.code, out.stderr,
                                           names=(str(prep.root),) if ours else (),
                                           causes=causes)
        elif line is not None and line.split("(", 1)[0].split()[-1] == "fsync":
            found.append(inv.Violation(inv.CLEAR_ERROR, f"a failed fsync exited 0: {line}"))
        elif now != prep.new:
            found.append(inv.Violation(inv.NO_TORN, "exit 0 but not the fault-free result"))
        found += inv.check_index(prep.tree)
        found += inv.check_clean(prep.root, prep.tree)
    elif not inv.lock_is_free(prep.tree):
        found.append(inv.Violation(inv.CLEAN, "the lock outlived the killed run"))
    if out.code == 0:
        return found
    runs = [r for r in inv.read_runs(prep.tree) if int(str(r["id"])) > prep.last_run]
    # The same operation again, unless the faulty run got as far as recording itself done
    # (a rollback run twice would step back one more run).
    done = any(r["state"] == "done" for r in runs)
    task = "history" if done and prep.scenario.task.startswith("rollback") \
        else prep.scenario.task
    if retry_kill is not None and task != "history":
        call, n = retry_kill
        log = prep.root.parent / "retry.log"
        retried = cli(prep.root, prep.scenario.task, prep.scenario.kwargs,
                      prefix=strace_prefix(log, call, "signal=SIGKILL", n))
        now = prep.files()
        found += inv.check_no_torn(prep.before, prep.new, now)
        if retried.code == 0:
            task = "history"  # the kill never came: that run was the recovery run
    running = [r["id"] for r in inv.read_runs(prep.tree) if r["state"] == "running"]
    again = cli(prep.root, task, prep.scenario.kwargs if task == prep.scenario.task else {})
    if again.code != 0:
        return [*found, inv.Violation(inv.CLEAN, f"the recovery run fails: {again.stderr}")]
    if prep.files() != prep.new:
        found.append(inv.Violation(inv.CLEAN, "the recovery run does not give the fault-free "
                                   "result"))
    states = {r["id"]: r["state"] for r in inv.read_runs(prep.tree)}
    for run in running:
        if states.get(run) != "interrupted":
            found.append(inv.Violation(inv.CLEAN, f"killed run {run} is {states.get(run)}, "
                                       "not interrupted"))
    found += inv.check_index(prep.tree, allow_running=False)
    found += inv.check_clean(prep.root, prep.tree)
    return found + undo_since(prep, cli)


def sweep_call(prep: Prepared, job: tuple[str, str, int]) -> tuple[str, list[inv.Violation], bool]:
    """One faulty run: ``action`` at the ``n``-th ``call``. Returns (label, violations, fired)."""
    call, action, n = job
    prep.reset()
    log = prep.root.parent / f"strace-{call}-{n}.log"
    out = cli(prep.root, prep.scenario.task, prep.scenario.kwargs,
              prefix=strace_prefix(log, call, action, n))
    kill = action.startswith("signal")
    line = injected_line(log)
    fired = killed(out) if kill else line is not None
    label = f"{call} {action} N={n} (exit {out.code})"
    if not fired:
        ok = out.code == 0 and prep.files() == prep.new
        return label, [] if ok else [inv.Violation(inv.NO_TORN, "unfaulted run failed: "
                                                   + out.stderr)], False
    # Every third kill also kills the recovery run part way (a second crash).
    retry = ("rename", 1 + n % 3) if kill and n % 3 == 0 else None
    return label, after_fault(prep, out, line, kill=kill, retry_kill=retry,
                              causes=CAUSES.get(action, ())), True


def run_sweep(scenario: str, calls: tuple[str, ...], actions: tuple[str, ...],
              base: Path) -> dict[str, Tally]:
    preps = [prepare(BY_NAME[scenario], base / f"w{i}") for i in range(harness.workers())]
    tallies: dict[str, Tally] = {}
    for call in calls:
        for action in actions:
            tally = tallies.setdefault(f"strace {action.split('=')[1]} at {call}", Tally())
            start = 1
            # Batches of N in parallel; stop after the first batch with an unfaulted run.
            while start <= MAX_N:
                jobs = [(call, action, n) for n in range(start, start + len(preps) * 2)]
                results = harness.run_parallel(preps, jobs, sweep_call)
                for label, found, fired in results:
                    if fired:
                        tally.add(label, found)
                    elif found:
                        tally.problems += [f"{label}: {v}" for v in found]
                if not all(fired for _, _, fired in results):
                    break
                start += len(jobs)
    return tallies


def report(tallies: dict[str, Tally], what: str) -> None:
    problems = []
    for name, tally in tallies.items():
        ledger.add(name, injected=tally.faulted, kept=tally.kept, bytes_lost=tally.lost)
        problems += tally.problems
    assert sum(t.faulted for t in tallies.values()), "no fault was injected"
    assert not problems, f"{what}:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("scenario", ["deploy.scripts", "rollback.scripts"])
def test_strace_sweep(scenario: str, tmp_path: Path) -> None:
    """EIO and SIGKILL at every N of each write-side syscall keep the invariants; a kill is
    recovered as ``interrupted`` by the next run, even when that run is killed too."""
    tallies = run_sweep(scenario, DEFAULT_CALLS[scenario], ("error=EIO", "signal=SIGKILL"),
                        tmp_path)

    report(tallies, scenario)


@pytest.mark.slow
@pytest.mark.parametrize("action", ["error=EIO", "error=ENOSPC", "signal=SIGKILL"])
@pytest.mark.parametrize("scenario", ["deploy.scripts", "rollback.scripts", "deploy",
                                      "versions.bulk", "rollback.release"])
def test_strace_sweep_full(scenario: str, action: str, tmp_path: Path) -> None:
    """The full sweep: every write-side syscall, more errors, more operations."""
    if BY_NAME[scenario].missing():
        pytest.skip(f"{scenario} not in tasks.py yet")
    tallies = run_sweep(scenario, SLOW_CALLS, (action,), tmp_path)

    report(tallies, f"{scenario} {action}")


# -- random kills --------------------------------------------------------------------------------
def random_kill(prep: Prepared, seed: int, longest: float = 0.03
                ) -> tuple[str, list[inv.Violation], bool]:
    """Start the operation, wait until it holds the lock, kill it after a random delay (up
    to ``longest`` seconds); half the time kill the recovery run too; then recover, check,
    roll back."""
    rng = random.Random(seed)
    prep.reset()
    lock = prep.tree / "lock"
    proc = subprocess.Popen(harness.cli_command(prep.scenario.task, prep.scenario.kwargs),
                            cwd=prep.root, env=harness.cli_env(prep.root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    pattern = re.compile(rf'"pid": {proc.pid}\b')
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if pattern.search(lock.read_text()):
                break
        except OSError:
            pass
        time.sleep(0.0005)
    time.sleep(rng.uniform(0, longest))
    proc.kill()
    _, stderr = proc.communicate()
    out = Outcome(proc.returncode, "", stderr)
    label = f"seed {seed} (exit {out.code})"
    if not killed(out):
        ok = out.code == 0 and prep.files() == prep.new
        return label, [] if ok else [inv.Violation(inv.NO_TORN, "run failed: " + stderr)], False
    retry = ("fsync", rng.randint(1, 4)) if rng.random() < 0.5 else None
    found = after_fault(prep, out, None, kill=True, retry_kill=retry)
    history = cli(prep.root, "history", {"json_": True})
    if history.code != 0 or "Traceback" in history.stderr:
        found.append(inv.Violation(inv.CLEAN, f"history fails after a kill: {history.stderr}"))
    return label, found, True


def kill_storm(scenario: str | harness.Scenario, kills: int, base: Path,
               longest: float = 0.03) -> Tally:
    chosen = BY_NAME[scenario] if isinstance(scenario, str) else scenario
    preps = [prepare(chosen, base / f"w{i}") for i in range(harness.workers())]
    tally = Tally()
    seed = 0
    while tally.faulted < kills and seed < kills * 4:
        jobs = list(range(seed, seed + len(preps) * 2))
        seed += len(jobs)
        kill = functools.partial(random_kill, longest=longest)
        for label, found, fired in harness.run_parallel(preps, jobs, kill):
            if fired:
                tally.add(label, found)
            elif found:
                tally.problems += [f"{label}: {v}" for v in found]
    return tally


@pytest.mark.parametrize("scenario", ["deploy.scripts", "rollback.scripts"])
def test_random_kills(scenario: str, tmp_path: Path) -> None:
    """At least 20 kills of a running deploy (and of a rollback): each is recovered, history
    says ``interrupted``, the invariants hold and rolling back restores."""
    kills = 20 if scenario == "deploy.scripts" else 6
    tally = kill_storm(scenario, kills, tmp_path)

    report({f"random SIGKILL ({scenario})": tally}, scenario)
    assert tally.faulted >= kills


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["deploy.scripts", "rollback.scripts"])
def test_random_kills_storm(scenario: str, tmp_path: Path) -> None:
    """150 kills each of deploys and rollbacks (300 in all)."""
    tally = kill_storm(scenario, 150, tmp_path)

    report({f"random SIGKILL storm ({scenario})": tally}, scenario)
    assert tally.faulted >= 150


def test_random_kills_large_file(tmp_path: Path) -> None:
    """Kills while a 24 MiB script and its backup are being copied on the large-file path:
    each is recovered, the invariants hold and rolling back restores."""
    tally = kill_storm(harness.LARGE_SCRIPTS, 6, tmp_path, longest=0.12)

    report({"random SIGKILL (24 MiB script)": tally}, "deploy.scripts (24 MiB script)")
    assert tally.faulted >= 6
