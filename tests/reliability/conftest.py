"""The reliability suite's session hooks: print the table, write it for ``invoke reliability``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability import ledger


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ledger.dump()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from deploy_tasks.reliability import format_table

    rows = ledger.rows()
    if rows:
        terminalreporter.section("reliability: faults injected and invariants kept")
        terminalreporter.write_line(format_table(rows))
