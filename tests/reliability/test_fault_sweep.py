"""In-process fault sweep over every writing task: each call site, every N, once and for good.

The default run fails each site with one errno; ``--runslow`` adds the other errnos.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.reliability import faults, ledger
from tests.reliability.harness import Scenario, fast_scratch, prepare, scenario_params
from tests.reliability.sweep import sweep


def site_params() -> list[object]:
    params: list[object] = []
    for site in faults.SITES:
        for code in faults.ERRNOS:
            marks = [] if code == faults.DEFAULT_ERRNO[site] else [pytest.mark.slow]
            name = errno.errorcode[code]
            params.append(pytest.param(site, code, id=f"{site}-{name}", marks=marks))
    return params


@pytest.mark.parametrize("persistent", [pytest.param(False, id="once"),
                                        pytest.param(True, id="persistent")])
@pytest.mark.parametrize(("site", "code"), site_params())
@pytest.mark.parametrize("scenario", scenario_params())
def test_fault_sweep(scenario: Scenario, site: str, code: int, persistent: bool,
                     tmp_path: Path) -> None:
    """Every faulty run keeps the invariants; after a one-off fault the next run succeeds
    and rolling back restores the pre-operation snapshot."""
    with fast_scratch(tmp_path) as base:
        prep = prepare(scenario, base)

        result = sweep(prep, site, code, persistent=persistent)

    mode = "persistent" if persistent else "once"
    ledger.add(f"in-process {site} ({mode})", injected=result.faulted_runs, kept=result.kept,
               bytes_lost=result.bytes_lost)
    assert result.faulted_runs or site not in faults.MUST_FAIL, "no fault reached the site"
    assert not result.problems, f"{scenario.name} {site} {os.strerror(code)} {mode}:\n" + \
        "\n".join(result.problems[:15])


# The large-file path (hash on a second thread, writeback advice, a backup that gives its
# pages back) starts at 8 MiB; these sweeps shrink its thresholds so that the base
# project's 150 kB script takes it, through a ring of buffers that wraps many times.
LARGE_PATH = {"CHUNK": 16 << 10, "LARGE": 64 << 10, "KICK": 32 << 10, "WINDOW": 64 << 10}


@pytest.mark.parametrize("persistent", [pytest.param(False, id="once"),
                                        pytest.param(True, id="persistent")])
@pytest.mark.parametrize("site", ["os.write", "os.fsync", "os.replace", faults.COPY])
@pytest.mark.parametrize("scenario", scenario_params(("deploy.scripts", "rollback.scripts")))
def test_fault_sweep_large_file_path(scenario: Scenario, site: str, persistent: bool,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same invariants when the copies take the large-file path."""
    from deploy import fsio

    for name, value in LARGE_PATH.items():
        monkeypatch.setattr(fsio, name, value)
    with fast_scratch(tmp_path) as base:
        prep = prepare(scenario, base)
        assert (prep.root / "bin/big").stat().st_size >= 2 * fsio.LARGE

        result = sweep(prep, site, faults.DEFAULT_ERRNO[site], persistent=persistent)

    mode = "persistent" if persistent else "once"
    ledger.add(f"in-process {site} ({mode}), large-file path", injected=result.faulted_runs,
               kept=result.kept, bytes_lost=result.bytes_lost)
    assert result.faulted_runs, "no fault reached the site"
    assert not result.problems, f"{scenario.name} {site} {mode} (large-file path):\n" + \
        "\n".join(result.problems[:15])
