"""The in-process fault sweep: for N = 1, 2, ... fail the N-th call at one site, until a run
completes without reaching it; after each faulty run, check the invariants.

For a fault that strikes once, the follow-up matters too: the same operation run again
must succeed and leave the fault-free result, and rolling back every run since must give
back the pre-operation snapshot byte for byte and mode for mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.reliability import faults
from tests.reliability import invariants as inv
from tests.reliability.harness import Prepared, cli, run_forked, run_task, undo_since

MAX_N = 400  # a safety net: no operation here makes this many calls at one site


@dataclass
class SweepResult:
    site: str
    persistent: bool
    faulted_runs: int = 0
    kept: int = 0
    bytes_lost: int = 0
    problems: list[str] = field(default_factory=list)


def check_faulty_run(prep: Prepared, injector: faults.Injector, out: object) -> list[inv.Violation]:
    """Invariants 1-5 right after one faulty run (the retry and rollback come after)."""
    from tests.reliability.harness import Outcome

    assert isinstance(out, Outcome)
    now = prep.files()
    rows = inv.read_rows(prep.tree) if (prep.tree / "index.sqlite").exists() else None
    found = inv.check_no_loss(prep.root, prep.before, prep.new, now, rows, prep.tree)
    found += inv.check_backups_kept(prep.tree, prep.backups_before)
    found += inv.check_no_torn(prep.before, prep.new, now)
    if out.code != 0 or out.crash:
        found += inv.check_clear_error(
            out.code, out.stderr, names=(str(prep.root),),
            causes=faults.cause_words(injector.site, injector.code))
    elif injector.site in faults.MUST_FAIL:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"a failed {injector.site} was reported "
                                   "as success (exit 0)"))
    elif now != prep.new:
        found.append(inv.Violation(inv.NO_TORN, "exit 0 but the result differs from the "
                                   "fault-free run"))
    found += inv.check_index(prep.tree)
    if injector.persistent:
        # A cleanup that keeps failing cannot remove its temp files: the next run must.
        if not inv.lock_is_free(prep.tree):
            found.append(inv.Violation(inv.CLEAN, "the lock is still held"))
    else:
        found += inv.check_clean(prep.root, prep.tree)
    return found


def check_recovery(prep: Prepared, faulted_ok: bool) -> list[inv.Violation]:
    """The next run succeeds and gives the fault-free result; rollback restores."""
    found: list[inv.Violation] = []
    if not faulted_ok:
        again = run_task(prep.root, prep.scenario.task, **prep.scenario.kwargs)
        if not again.ok:
            return [inv.Violation(inv.CLEAN, "the next run fails: " + again.stderr.strip()[-300:])]
        diff = inv.check_no_torn(prep.new, prep.new, prep.files())
        if diff:
            return [inv.Violation(inv.CLEAN, "the next run does not give the fault-free "
                                  f"result: {diff[0].detail}")]
    found += inv.check_index(prep.tree, allow_running=False)
    found += inv.check_clean(prep.root, prep.tree)
    return found + undo_since(prep)


def sweep(prep: Prepared, site: str, code: int, *, persistent: bool) -> SweepResult:
    result = SweepResult(site, persistent)
    for n in range(1, MAX_N + 1):
        prep.reset()
        injector = faults.Injector(site, n, code, persistent=persistent)
        if persistent:
            # Its own pid, so the next run can tell the temp files it leaves are stale.
            out, injector = run_forked(prep.root, prep.scenario.task, prep.scenario.kwargs,
                                       injector.active)
        else:
            with injector.active():
                out = run_task(prep.root, prep.scenario.task, prep.scenario.kwargs)
        if not injector.fired:
            # The run never reached call N: it must be the fault-free run.
            if not out.ok or prep.files() != prep.new:
                result.problems.append(f"N={n} (no fault reached): exit {out.code} "
                                       f"{out.stderr.strip()[-300:]}")
            return result
        found = check_faulty_run(prep, injector, out)
        if not persistent or out.ok:
            found += check_recovery(prep, out.ok)
        else:
            # A fault that stays: once it is gone, the next run must still recover cleanly.
            # Temp files left by this process can only be told stale by another process.
            runner = cli if inv.temp_files(prep.root) else run_task
            again = runner(prep.root, prep.scenario.task, prep.scenario.kwargs)
            if not again.ok:
                found.append(inv.Violation(inv.CLEAN, "after the fault cleared the next run "
                                           "fails: " + again.stderr.strip()[-300:]))
            found += inv.check_index(prep.tree, allow_running=False)
            found += inv.check_clean(prep.root, prep.tree)
        result.faulted_runs += 1
        result.kept += not found
        result.bytes_lost += sum(v.bytes_lost for v in found)
        result.problems += [f"N={n} (exit {out.code}): {v}" for v in found]
    result.problems.append(f"no fault-free run within {MAX_N} calls")
    return result
