"""Where each rendered file stands: up to date, edited by hand, outdated or absent.

For ``templates.status``: the templates, the installed framework template and the parent
``CLAUDE.md`` files are planned exactly as a deploy would plan them, keeping hand edits,
and each outcome is read off the plan, so the status can never disagree with the deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from deploy import framework, templates
from deploy.config import Config
from deploy.errors import Blocked
from deploy.plan import combine
from deploy.store import Index

SETTLED = "up to date"


class RenderedStatus(NamedTuple):
    category: str
    key: str
    target: Path
    state: str  # up to date | edited by hand | outdated | absent


def status(cfg: Config, index: Index | None, stamp: str) -> list[RenderedStatus]:
    """Each rendered file's state, in the order a deploy plans them."""
    plan = combine(framework.plan_if_configured(cfg, index, on_conflict="keep", stamp=stamp),
                   templates.plan(cfg, index, on_conflict="keep", stamp=stamp))
    found = [RenderedStatus(category=c.category, key=c.key, target=c.target,
                            state="outdated" if c.old.exists else "absent")
             for c in plan.changes]
    states = {"unchanged": SETTLED, "kept": "edited by hand"}
    found += [RenderedStatus(category=s.category, key=s.key, target=s.target,
                             state=states[s.reason])
              for s in plan.skips if s.reason in states]
    targets = [c.target for c in plan.changes] + [s.target for s in plan.skips]
    order = {target: i for i, target in enumerate(targets)}
    return sorted(found, key=lambda r: order[r.target])


def check_status(rows: list[RenderedStatus]) -> None:
    """Blocked (exit 3) naming every rendered file that is not up to date."""
    unsettled = [f"{r.target} ({r.state})" for r in rows if r.state != SETTLED]
    if unsettled:
        raise Blocked(f"{len(unsettled)} rendered file(s) not up to date: "
                      f"{', '.join(unsettled)}; run `invoke deploy` (hand edits need "
                      "--on-conflict keep, merge or overwrite)")
