"""Counts behind the reliability table: per fault class, the faults injected, the runs that
kept every invariant, and the bytes lost.

Tests call :func:`record` for every faulty run *before* asserting, so a failing sweep
still shows up in the table. At the end of a session the table is printed, and written
as JSON to ``$RELIABILITY_REPORT`` when set (``invoke reliability`` reads it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.reliability.invariants import Violation

ENV = "RELIABILITY_REPORT"
_rows: dict[str, list[int]] = {}


def record(fault_class: str, violations: list[Violation] | tuple[Violation, ...] = (),
           *, injected: int = 1) -> None:
    """Count ``injected`` faults of one class; the run kept the invariants if no violation."""
    row = _rows.setdefault(fault_class, [0, 0, 0])
    row[0] += injected
    row[1] += injected if not violations else 0
    row[2] += sum(v.bytes_lost for v in violations)


def add(fault_class: str, *, injected: int, kept: int, bytes_lost: int = 0) -> None:
    """Add a sweep's totals to one class."""
    row = _rows.setdefault(fault_class, [0, 0, 0])
    row[0] += injected
    row[1] += kept
    row[2] += bytes_lost


def rows() -> list[dict[str, int | str]]:
    return [{"fault_class": k, "injected": v[0], "kept": v[1], "bytes_lost": v[2]}
            for k, v in sorted(_rows.items())]


def dump() -> None:
    path = os.environ.get(ENV)
    if path:
        Path(path).write_text(json.dumps({"rows": rows()}, indent=2) + "\n")
