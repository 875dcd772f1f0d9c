"""``invoke deploy``: one release over every configured category, planned whole first.

Every category's plan is built (sources read, templates rendered, names
checked) before the first write; the store then applies the combined plan as
one run, so a failure anywhere restores everything the release changed.
"""

from __future__ import annotations

from collections import Counter

from deploy import context, framework, scripts, templates, versions
from deploy.config import Config
from deploy.errors import ConfigError
from deploy.plan import Plan, combine
from deploy.store import Index


def plan(cfg: Config, index: Index | None, *, on_conflict: str = "fail",
         stamp: str | None = None) -> Plan:
    """The whole release's plan: scripts, then the framework and its parents, then templates.

    ``stamp`` is the run's ``deployed_at``; the caller passes one value so that
    planning twice (read-only, then under the lock) renders the same bytes.
    """
    stamp = stamp or context.deployed_at()
    # The versions gate first: an incompatible release writes nothing (exit 3).
    versions.gate(versions.layout(cfg.versions_dir, cfg.versions_files), cfg.requires)
    combined = combine(
        scripts.plan(cfg.scripts_source, cfg.scripts_target, include=cfg.scripts_include,
                     exclude=cfg.scripts_exclude),
        framework.plan_if_configured(cfg, index, on_conflict=on_conflict, stamp=stamp),
        templates.plan(cfg, index, on_conflict=on_conflict, stamp=stamp))
    check_targets(combined)
    return combined


def check_targets(plan: Plan) -> None:
    """Two categories must not write one file: the second would silently undo the first."""
    targets = [c.target for c in plan.changes] + [s.target for s in plan.skips]
    twice = sorted(str(t) for t, n in Counter(targets).items() if n > 1)
    if twice:
        raise ConfigError(f"{twice[0]}: configured as the target of two entries; give each "
                          "its own target")
