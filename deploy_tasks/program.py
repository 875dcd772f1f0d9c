"""The installed ``claude-pm-deploy`` command: Invoke's ``Program`` over the same task tree.

``pip install .`` puts it on PATH (``[project.scripts]``); it runs from any folder (issue 12).
Its config: ``--config FILE``, else ``DEPLOY_CONFIG``, else the nearest ``pyproject.toml``
with a ``[tool.deploy]`` table in the current folder or a folder above it, as
bump-my-version finds its own; a ``pyproject.toml`` without the table is passed over. The
search runs when a task first asks for the config, so ``--list`` and ``--help`` work
anywhere. ``invoke`` in a checkout keeps ``common.beside_tasks``.

Here ``--config`` is ours: Invoke's own ``--config``/``-f`` (a runtime config file for
Invoke itself) is left out, and ``INVOKE_RUNTIME_CONFIG`` still names one. A bundled
collection loads no ``invoke.json``, so the executor is given to the ``Program`` itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from invoke.parser import Argument

from deploy.errors import ConfigError
from deploy_tasks import common
from deploy_tasks.collection import ns
from deploy_tasks.executor import FreezingExecutor
from deploy_tasks.parsing import ParseGuard

COMMAND = "claude-pm-deploy"
DISTRIBUTION = "claude-pm-deploy"
CONFIG_HELP = ("the TOML file with the [tool.deploy] table (default: DEPLOY_CONFIG, else the "
               "nearest pyproject.toml with one, in this folder or above)")


class DeployProgram(ParseGuard):
    """``claude-pm-deploy``: the task tree, its own ``--version`` and ``--config``."""

    def core_args(self) -> list[Argument]:
        args = [arg for arg in super().core_args() if arg.name != "config"]
        return [*args, Argument(names=("config",), help=CONFIG_HELP)]

    def update_config(self, merge: bool = True) -> None:
        flag = self.args.config
        given = flag.value
        # Invoke's own update_config loads args.config as its runtime config file; ours is a
        # TOML file it cannot read, so it sees none and INVOKE_RUNTIME_CONFIG decides.
        flag.set_value(None, cast=False)
        super().update_config(merge)
        common.use_entry_point(COMMAND, lambda: locate_config(given))

    def print_version(self) -> None:
        common.echo(f"{self.name} {package_version()}")


def locate_config(given: str | None) -> Path:
    """``--config``'s file, else ``DEPLOY_CONFIG``'s, else the nearest one with the table."""
    if given:
        return Path(given)
    env = os.environ.get("DEPLOY_CONFIG")
    return Path(env) if env else nearest_pyproject(Path.cwd())


def nearest_pyproject(start: Path) -> Path:
    """The nearest ``pyproject.toml`` with a ``[tool.deploy]`` table in ``start`` or above.

    One without the table is some other project's (a monorepo's root, a tool's own): it is
    passed over. One that cannot be read or parsed stops the search, naming it: whether it
    holds the table is unknown.
    """
    import tomllib

    skipped: list[str] = []
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        try:
            with open(candidate, "rb") as handle:
                document = tomllib.load(handle)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            raise ConfigError(f"{candidate}: cannot read config: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{candidate}: not valid TOML: {err}") from err
        tool = document.get("tool")
        if isinstance(tool, dict) and "deploy" in tool:
            return candidate
        skipped.append(str(candidate))
    passed = f" (passed over {', '.join(skipped)}: no [tool.deploy])" if skipped else ""
    raise ConfigError(f"no pyproject.toml with a [tool.deploy] table in {start} or any folder "
                      f"above it{passed}; pass --config FILE or set DEPLOY_CONFIG")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


program = DeployProgram(namespace=ns, name=COMMAND, binary=COMMAND, binary_names=[COMMAND],
                        executor_class=FreezingExecutor)


def main() -> None:
    """The ``claude-pm-deploy`` console script."""
    program.run()
