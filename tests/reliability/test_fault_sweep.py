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
