"""The variables every template sees, built once per run.

``versions`` and ``framework_version`` come from the version files,
``deployed_at`` is the run's stamp, ``parent_dir`` is added per parent folder,
and ``[tool.deploy.context]`` adds the rest (it may not hide a built-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deploy import fsio, versions
from deploy.config import Config
from deploy.errors import ConfigError

BUILTINS = ("versions", "framework_version", "deployed_at", "parent_dir")


def deployed_at() -> str:
    """Now, as ISO 8601 with the local offset, to the second; computed once per run."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _versions(versions_dir: Path) -> tuple[dict[str, str], str | None]:
    if not versions_dir.is_dir():
        # No versions folder: the templates simply see no versions.
        return {}, None
    found = {key: str(vf.version) for key, vf in versions.read_all(versions_dir).items()}
    return found, versions.framework_version(versions_dir)


def variables(cfg: Config, stamp: str) -> dict[str, Any]:
    """The variables every template sees; ``parent_dir`` is added per parent folder."""
    found, framework_version = _versions(cfg.versions_dir)
    for key in cfg.context:
        if key in BUILTINS:
            raise ConfigError(f"{cfg.path}: tool.deploy.context.{key} would hide the built-in "
                              f"template variable {key!r}; rename it")
    ctx: dict[str, Any] = dict(cfg.context)
    ctx["versions"] = found
    if framework_version is not None:
        ctx["framework_version"] = framework_version
    ctx["deployed_at"] = stamp
    return ctx


def digest(variables: Mapping[str, Any]) -> str:
    """A hash of the variables a render sees, but ``deployed_at`` (stable across runs)."""
    import json

    stable = {k: v for k, v in variables.items() if k != "deployed_at"}
    text = json.dumps(stable, sort_keys=True, default=str)
    return fsio.sha256_bytes(text.encode("utf-8"))
