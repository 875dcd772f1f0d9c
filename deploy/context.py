"""The variables every template sees, built once per run.

``versions`` and ``framework_version`` come from the version files,
``deployed_at`` is the run's stamp, ``parent_dir`` is added per parent folder;
a ``[tool.deploy.context]`` key may not hide one of these.

The original framework's deployment variables come under its own names, so its
``framework/CLAUDE.md`` renders unchanged (issue 12): ``FRAMEWORK_VERSION``,
``DEPLOYMENT_DATE``, ``DEPLOYMENT_DIR``, ``PLATFORM``, ``PYTHON_CMD`` here, and
``CLAUDE_MD_VERSION`` per parent folder (:mod:`deploy.rendercache`). Context keys
override these, which is how a config pins the original's values or passes one
of its never-filled placeholders through as written (``LAST_UPDATED =
"{{LAST_UPDATED}}"``: Jinja does not render a variable's value again).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from deploy import fsio, versions
from deploy.config import Config
from deploy.errors import ConfigError

BUILTINS = ("versions", "framework_version", "deployed_at", "parent_dir")
# The original's names (claude_pm/services/parent_directory_manager.py,
# _get_deployment_template_variables); context keys may override them.
ORIGINAL = ("FRAMEWORK_VERSION", "DEPLOYMENT_DATE", "DEPLOYMENT_DIR", "PLATFORM", "PYTHON_CMD",
            "CLAUDE_MD_VERSION")
# The shape of a run stamp as deployed_at or DEPLOYMENT_DATE shows it, to find an earlier
# run's stamp in its output.
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)?")
FRAMEWORK_SUBSYSTEM = "framework"  # the FRAMEWORK_VERSION file, read as a subsystem


def deployed_at() -> str:
    """Now, as ISO 8601 with the local offset, to the second; computed once per run."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def local_time(stamp: str) -> str:
    """``DEPLOYMENT_DATE`` of a run stamp: its local wall time, ISO 8601 without an offset.

    The original used ``datetime.now().isoformat()``, naive local time; ours is the
    same shape to the second (Python drops the fraction when it is zero, as here).
    """
    return datetime.fromisoformat(stamp).replace(tzinfo=None).isoformat()


def _versions(cfg: Config) -> tuple[dict[str, str], str | None]:
    if not cfg.versions_dir.is_dir() and not cfg.versions_files:
        # No versions folder: the templates simply see no versions.
        return {}, None
    where = versions.layout(cfg.versions_dir, cfg.versions_files)
    found = {key: str(vf.version) for key, vf in versions.read_all(where).items()}
    framework = versions.framework_version(cfg.versions_dir) \
        if cfg.versions_dir.is_dir() else None
    return found, framework


def original(cfg: Config, stamp: str, found: Mapping[str, str],
             framework_version: str | None) -> dict[str, Any]:
    """The original framework's deployment variables, valued as its default path valued
    them: FRAMEWORK_VERSION from the ``FRAMEWORK_VERSION`` file, else ``VERSION``; the run's
    local time; the config file's folder (the original's framework root); ``os.name``."""
    ctx: dict[str, Any] = {}
    # The FRAMEWORK_VERSION file of versions.dir (never a versions.files entry so named: it
    # is refused when that file exists, and without it the original read VERSION).
    in_dir = not any(key == FRAMEWORK_SUBSYSTEM for key, _ in cfg.versions_files)
    framework = found.get(FRAMEWORK_SUBSYSTEM, framework_version) if in_dir \
        else framework_version
    if framework is not None:
        ctx["FRAMEWORK_VERSION"] = framework
    ctx["DEPLOYMENT_DATE"] = local_time(stamp)
    ctx["DEPLOYMENT_DIR"] = str(cfg.path.resolve().parent)
    ctx["PLATFORM"] = os.name
    ctx["PYTHON_CMD"] = "python3"
    return ctx


def variables(cfg: Config, stamp: str) -> dict[str, Any]:
    """The variables every template sees; ``parent_dir`` and ``CLAUDE_MD_VERSION`` are
    added per parent folder."""
    found, framework_version = _versions(cfg)
    for key in cfg.context:
        if key in BUILTINS:
            raise ConfigError(f"{cfg.path}: tool.deploy.context.{key} would hide the built-in "
                              f"template variable {key!r}; rename it")
    ctx = original(cfg, stamp, found, framework_version)
    ctx.update(cfg.context)
    ctx["versions"] = found
    if framework_version is not None:
        ctx["framework_version"] = framework_version
    ctx["deployed_at"] = stamp
    return ctx


def _local_or_none(stamp: Any) -> str | None:
    try:
        return local_time(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def stamped(variables: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables that follow the run stamp: ``deployed_at``, and ``DEPLOYMENT_DATE``
    unless the config pinned it (then it is not this run's local time)."""
    if "deployed_at" not in variables:
        return ()
    local = _local_or_none(variables["deployed_at"])
    if local is not None and variables.get("DEPLOYMENT_DATE") == local:
        return ("deployed_at", "DEPLOYMENT_DATE")
    return ("deployed_at",)


def restamp(variables: Mapping[str, Any], stamp: str) -> dict[str, Any] | None:
    """``variables`` as a run stamped ``stamp`` (found in an earlier output, with or without
    its offset) would have had them; None when ``stamp`` is no time at all."""
    keys = stamped(variables)
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    # Without an offset it was seen as DEPLOYMENT_DATE, a local wall time; if deployed_at
    # shows too, its own (offset) form is among the stamps found, and is tried as well.
    run_stamp = stamp if when.tzinfo is not None \
        else when.astimezone().isoformat(timespec="seconds")
    again = dict(variables)
    if "deployed_at" in keys:
        again["deployed_at"] = run_stamp
    if "DEPLOYMENT_DATE" in keys:
        again["DEPLOYMENT_DATE"] = local_time(run_stamp)
    return again


def digest(variables: Mapping[str, Any]) -> str:
    """A hash of the variables a render sees, but those that follow the run stamp (stable
    across runs)."""
    import json

    moving = stamped(variables)
    stable = {k: v for k, v in variables.items() if k not in moving}
    text = json.dumps(stable, sort_keys=True, default=str)
    return fsio.sha256_bytes(text.encode("utf-8"))
