"""The task layer's side of running on a host (``deploy_tasks.remote.hostside`` sets the
environment these read): the config as a host reads it, and the run a command made."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy.config import Config


def on_host(cfg: Config) -> Config:
    """``cfg`` as the host side of ``--hosts`` reads it from the bundle it was sent
    (``deploy_tasks.remote.hostside``): ``DEPLOYMENT_DIR`` is the checkout's folder on the
    controller, not the temporary one, and no target or state dir may lie in the bundle,
    which is removed after the run (a relative one would)."""
    from deploy.errors import ConfigError

    root = Path(os.environ["DEPLOY_BUNDLE_ROOT"])
    written = [("state_dir", cfg.state_dir), ("scripts.target", cfg.scripts_target),
               ("framework.install_to", cfg.framework_install_to),
               *((f"framework.parents[{i}]", p) for i, p in enumerate(cfg.parents)),
               *((f"templates[{i}].target", t.target) for i, t in enumerate(cfg.templates))]
    for key, path in written:
        if path is not None and (path == root or root in path.parents):
            raise ConfigError(f"tool.deploy.{key} is relative to the checkout, which a host "
                              "does not have; with --hosts give it as ~/... or an absolute path")
    if cfg.backup.compression_enabled:
        import importlib.util

        if importlib.util.find_spec("zstandard") is None:
            # A compiled package: the zipapp carries pure Python only.
            raise ConfigError("tool.deploy.backup.compression_enabled needs the zstandard "
                              "package on the host (Debian: apt-get install python3-zstandard)"
                              ", which the shipped host side cannot carry; or set it false")
    if cfg.framework_bundled:
        # The controller's shipped template came in the bundle, not in this host side's zip.
        from deploy.bundle import BUNDLED

        cfg = cfg._replace(framework_template=root.joinpath(*BUNDLED.split("/"), "CLAUDE.md"))
    origin = os.environ.get("DEPLOY_ORIGIN")
    return cfg._replace(context={"DEPLOYMENT_DIR": origin, **cfg.context}) if origin else cfg


def record_result(run: int | None) -> None:
    """On a host (``DEPLOY_RESULT_FILE``), tell the controller which run this command made,
    so ``--all-or-none`` can undo it when another host fails."""
    path = os.environ.get("DEPLOY_RESULT_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"run": run}, handle)
