"""What runs on a host: ``python3 host.pyz BUNDLE SHA256 PROJECT ORIGIN -- TASK ARGS...``.

It runs from the private temporary folder the controller made (``mktemp -d``), after the
controller checked this zipapp's own sha256 there. It checks the bundle (the config and
the sources) against ``SHA256`` and its manifest, unpacks it beside itself, and runs the task
through the same Program as ``claude-pm-deploy``: the same planning, conflict checks against
this host's own index, and the same backup-first, atomic, durable writes into this host's own
``state_dir`` (``~`` is this user's home). ``PROJECT`` is the controller's config path, recorded
as each run's project, so that ``history`` and the step-back rollbacks of one checkout find
its runs on every host whatever temporary folder delivered them. ``ORIGIN`` is the
checkout's folder, the templates' ``DEPLOYMENT_DIR``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info < (3, 11):  # noqa: UP036 - the message a too-old host must get
    sys.stderr.write("error: the host side needs Python >= 3.11\n")
    raise SystemExit(1)

# Set on the host when the controller ran under a test that asked for it: the run stops
# after its backups are written and before any target changes, writes its pid to this file
# (``~`` is the host's home) and waits until the file is removed or it is killed
# (tests/test_hosts.py: a host lost mid-release, a Ctrl-C). Nothing else reads it.
PAUSE = "DEPLOY_TEST_HOST_PAUSE"
# Set by the controller: this host's name and the controller's command, which the hints name.
HOST_NAME = "DEPLOY_HOST_NAME"
CONTROLLER = "DEPLOY_CONTROLLER_COMMAND"


def _pause_before_targets(marker: str) -> None:
    import importlib
    import time

    applying = importlib.import_module("deploy.store.apply")
    write_targets = applying.write_targets
    path = Path(marker).expanduser()

    def paused(*args: Any, **kwargs: Any) -> Any:
        path.write_text(f"{os.getpid()}\n")
        while path.exists():  # until the test removes it (or kills this process)
            time.sleep(0.05)
        return write_targets(*args, **kwargs)

    setattr(applying, "write_targets", paused)  # noqa: B010 - mypy sees a module


def _hosts_tasks() -> frozenset[str]:
    """The task names a hint may use (``deploy`` for ``deploy.all`` too) that take --hosts."""
    from deploy_tasks.collection import ns

    names: set[str] = set()

    def walk(collection: Any, prefix: str) -> None:
        for name, task in collection.tasks.items():
            if getattr(task, "host_flags", ()):
                names.add(prefix + name)
                if prefix and collection.default == name:
                    names.add(prefix[:-1])
        for name, sub in collection.collections.items():
            walk(sub, f"{prefix}{name}.")

    walk(ns, "")
    return frozenset(names)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 6 or args[4] != "--":
        sys.stderr.write("error: usage: host.pyz BUNDLE SHA256 PROJECT ORIGIN -- TASK ARGS\n")
        return 2
    bundle, sha256, project, origin, _dashes, *task = args
    here = Path(sys.argv[0]).resolve().parent
    from deploy import bundle as bundles
    from deploy.errors import DeployError

    try:
        config = bundles.extract(here / bundle, sha256, here / "project")
    except (DeployError, OSError) as err:
        sys.stderr.write(f"error: {err}\n")
        return getattr(err, "exit_code", 1)
    os.environ.update({"DEPLOY_CONFIG": str(config), "DEPLOY_PROJECT": project,
                       "DEPLOY_ORIGIN": origin, "DEPLOY_BUNDLE_ROOT": str(config.parent),
                       "DEPLOY_RESULT_FILE": str(here / "result.json")})
    marker = os.environ.pop(PAUSE, None)
    if marker:
        _pause_before_targets(marker)
    named = os.environ.pop(HOST_NAME, None)
    if named:
        from deploy_tasks.output import Output

        Output.host = (named, os.environ.pop(CONTROLLER, None) or "invoke", _hosts_tasks())
    from deploy_tasks.program import program

    # What the task layer reads of its own command line (the run's recorded command, the
    # core flags of an undo command) is the task's, not this wrapper's.
    sys.argv = ["claude-pm-deploy", *task]
    program.run(sys.argv, exit=True)
    return 0
