"""What the store returns: the changes a run made."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Applied(NamedTuple):
    """One change a run made: its category, target, action and backup (None when absent);
    action ``adopt``: the target accepted as it was, nothing written."""

    category: str
    key: str
    target: Path
    action: str
    backup: Path | None
    seq: int


class RunResult(NamedTuple):
    run: int | None
    changes: tuple[Applied, ...]
    recovered: tuple[int, ...] = ()
