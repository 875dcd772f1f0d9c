"""The installed ``claude-pm-deploy`` command: built as a wheel, ``pip install``-ed into a
fresh venv, run from folders nested below its project; and its config search.

The fresh venv gets the runtime dependencies from this environment (a folder of links to
its site-packages, minus this project's own files, on the venv's path), so nothing is
downloaded to install it; building the wheel needs setuptools from an index (or
``--no-build-isolation`` where setuptools and wheel are installed): without either, the
install tests skip with the reason.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.errors import ConfigError
from deploy_tasks.program import locate_config, nearest_pyproject
from tests.conftest import REPO, assert_one_error_line, frozen_at_start

TABLE = '[tool.deploy]\nstate_dir = "state"\n\n[tool.deploy.versions]\ndir = "."\n'
OTHER = '[project]\nname = "not-ours"\n'
SKIP_SOURCES = shutil.ignore_patterns(".git", ".venv", "tests", "bench", "build", "dist",
                                      "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")

Run = Callable[..., subprocess.CompletedProcess[str]]

# The console script's body, run from the checkout, with an exit hook that reports how many
# objects gc.freeze() moved to the permanent generation.
PROGRAM_REPORTING_FREEZE = """\
import atexit, gc, sys
atexit.register(lambda: print(f"freeze count {gc.get_freeze_count()}", file=sys.stderr))
from deploy_tasks.program import main
main()
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points into this checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DEPLOY_CONFIG", "DEPLOY_PREFIX")}
    return {**env, **extra}


def build_wheel(source: Path, dist: Path) -> str | None:
    """Build the wheel into ``dist``; None when done, else why it could not be."""
    reasons = []
    for isolation in ([], ["--no-build-isolation"]):
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                               *isolation, "-w", str(dist), str(source)],
                              capture_output=True, text=True, timeout=600, check=False,
                              env=clean_env())
        if done.returncode == 0:
            return None
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        reasons.append(f"pip wheel {' '.join(isolation) or '(isolated)'}: {tail}")
    return "; ".join(reasons)


def link_dependencies(view: Path) -> None:
    """Link every entry of this environment's site-packages into ``view``, except the files
    of this project's own distribution (its editable finder, dist-info or packages)."""
    view.mkdir()
    for folder in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        # Looked up in this folder only: the checkout's own *.egg-info is on sys.path too.
        own = {Path(str(f)).parts[0] for dist in importlib.metadata.distributions(path=[folder])
               if dist.metadata["Name"] == "claude-pm-deploy"
               for f in dist.files or () if not str(f).startswith("..")}
        for entry in Path(folder).iterdir():
            if entry.name not in own and not (view / entry.name).exists():
                (view / entry.name).symlink_to(entry)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel of this checkout, installed by pip: its bin folder."""
    root = tmp_path_factory.mktemp("installed")
    # A copy, because pip builds in the source tree (build/, *.egg-info).
    source = root / "source"
    shutil.copytree(REPO, source, ignore=SKIP_SOURCES)
    why = build_wheel(source, root / "dist")
    if why:
        pytest.skip(f"cannot build the wheel: {why}")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path"
                              "('purelib'))"], capture_output=True, text=True, check=True
                             ).stdout.strip()
    link_dependencies(root / "deps")
    Path(purelib, "_deps.pth").write_text(f"{root / 'deps'}\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-index", "--find-links", str(root / "dist"), "claude-pm-deploy"],
                          capture_output=True, text=True, timeout=600, check=False,
                          env=clean_env())
    if done.returncode != 0 and "no such option: --python" in done.stderr:
        pytest.skip("this pip has no --python (pip >= 22.3 has)")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (venv / "bin" / "claude-pm-deploy").is_file(), done.stdout
    return venv / "bin"


@pytest.fixture
def command(installed: Path, scratch_home: Path) -> Run:
    """Run the installed ``claude-pm-deploy`` in a folder, HOME a scratch folder."""

    def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed / "claude-pm-deploy"), *args], cwd=cwd,
                              env=clean_env(HOME=str(scratch_home), **env),
                              capture_output=True, text=True, timeout=120, check=False)

    return run


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """A project whose pyproject.toml has the table, a folder below it whose pyproject.toml
    has not (a subproject of some other tool), and a working folder two levels down."""
    (tmp_path / "project" / "sub" / "work").mkdir(parents=True)
    (tmp_path / "project" / "pyproject.toml").write_text(TABLE)
    (tmp_path / "project" / "MEMORY_VERSION").write_text("003\n")
    (tmp_path / "project" / "sub" / "pyproject.toml").write_text(OTHER)
    return tmp_path / "project" / "sub" / "work"


def no_config_above(folder: Path) -> None:
    if any((parent / "pyproject.toml").exists() for parent in folder.parents):
        pytest.skip(f"a pyproject.toml above {folder} would be found")


# --- the config search ---------------------------------------------------------------------

def test_the_nearest_pyproject_with_the_table_is_found(nested: Path) -> None:
    """From two levels down, past a pyproject.toml without ``[tool.deploy]``."""
    found = nearest_pyproject(nested)

    assert found == nested.parent.parent / "pyproject.toml"


def test_a_pyproject_in_the_current_folder_comes_first(nested: Path) -> None:
    """The current folder is searched before its parents."""
    (nested / "pyproject.toml").write_text(TABLE)

    assert nearest_pyproject(nested) == nested / "pyproject.toml"


def test_no_pyproject_with_the_table_names_where_it_looked(nested: Path) -> None:
    """None found: exit 2 (ConfigError) naming the start folder and each file passed over."""
    (nested.parent.parent / "pyproject.toml").write_text(OTHER)
    no_config_above(nested.parent.parent)

    with pytest.raises(ConfigError) as caught:
        nearest_pyproject(nested)

    message = str(caught.value)
    assert f"no pyproject.toml with a [tool.deploy] table in {nested} or any folder above" \
        in message
    assert str(nested.parent / "pyproject.toml") in message
    assert "--config FILE or set DEPLOY_CONFIG" in message
    assert caught.value.exit_code == 2


def test_a_broken_pyproject_stops_the_search(nested: Path) -> None:
    """A pyproject.toml that is not TOML may or may not hold the table: an error naming it."""
    (nested.parent / "pyproject.toml").write_text("[tool.deploy\n")

    with pytest.raises(ConfigError) as caught:
        nearest_pyproject(nested)

    assert str(caught.value).startswith(f"{nested.parent / 'pyproject.toml'}: not valid TOML")


def test_config_flag_then_environment_then_search(nested: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``--config`` wins over ``DEPLOY_CONFIG``, which wins over the search."""
    monkeypatch.chdir(nested)
    monkeypatch.delenv("DEPLOY_CONFIG", raising=False)
    searched = locate_config(None)
    monkeypatch.setenv("DEPLOY_CONFIG", "from-env.toml")

    assert searched == nested.parent.parent / "pyproject.toml"
    assert locate_config(None) == Path("from-env.toml")
    assert locate_config("given.toml") == Path("given.toml")


# --- the Program, from the checkout ---------------------------------------------------------

@pytest.mark.parametrize(("args", "frozen"), [
    pytest.param(("versions.show",), True, id="running-a-task-freezes"),
    pytest.param(("--list",), False, id="listing-runs-nothing-to-freeze-for"),
])
def test_the_program_runs_tasks_with_the_freezing_executor(nested: Path, args: tuple[str, ...],
                                                           frozen: bool) -> None:
    """No invoke.json is read for a bundled collection: the Program is given the executor
    itself, so a task runs after gc.freeze() and --list freezes nothing (beyond what this
    Python counts as frozen at start: 0 on 3.11, a few hundred objects on 3.12)."""
    done = subprocess.run([sys.executable, "-c", PROGRAM_REPORTING_FREEZE, *args], cwd=nested,
                          env=clean_env(), capture_output=True, text=True, timeout=120,
                          check=False)

    counts = [line for line in done.stderr.splitlines() if line.startswith("freeze count ")]
    assert done.returncode == 0, done.stderr
    assert len(counts) == 1, done.stderr
    assert (int(counts[0].removeprefix("freeze count ")) > frozen_at_start()) is frozen


# --- the installed command -----------------------------------------------------------------

def test_the_command_is_the_installed_copy(installed: Path) -> None:
    """The console script runs the venv's own copy of the package, not this checkout."""
    done = subprocess.run([str(installed / "python"), "-c",
                           "import deploy_tasks; print(deploy_tasks.__file__)"],
                          capture_output=True, text=True, check=True, env=clean_env(),
                          cwd=installed)

    assert Path(done.stdout.strip()).is_relative_to(installed.parent)


def test_version_is_the_package_version(command: Run, tmp_path: Path) -> None:
    """``--version``: the distribution's version, from its metadata."""
    version = importlib.metadata.version("claude-pm-deploy")

    done = command("--version", cwd=tmp_path)

    assert done.stdout.strip() == f"claude-pm-deploy {version}"


def test_list_works_anywhere(command: Run, tmp_path: Path) -> None:
    """``--list`` needs no config: it works in a folder with none around it."""
    no_config_above(tmp_path)

    done = command("--list", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "versions.show" in done.stdout and "rollback.release" in done.stdout


def test_a_task_runs_from_two_levels_below_its_project(command: Run, nested: Path) -> None:
    """``versions.show`` in a scratch folder finds the project's pyproject.toml two levels
    up, passing over the one without the table between them."""
    done = command("versions.show", cwd=nested)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["memory", "003"]


def test_a_writing_task_runs(command: Run, nested: Path) -> None:
    """A bump through the installed command writes, backs up and records its run, under the
    state dir the found config names (relative to that file's folder)."""
    project = nested.parent.parent

    done = command("versions.bump", "memory", "--json", cwd=nested)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes"][0]["target"] == str(project / "MEMORY_VERSION")
    assert (project / "MEMORY_VERSION").read_text() == "004\n"
    assert len(list((project / "state" / "backups" / "versions").iterdir())) == 1


def test_the_bundled_framework_template_is_in_the_wheel(command: Run, installed: Path,
                                                        scratch_home: Path,
                                                        tmp_path: Path) -> None:
    """A project with no template of its own deploys the shipped one from the installed
    package: a regular file there (no link back into the checkout), byte for byte the
    checkout's ``templates/framework/CLAUDE.md``."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        TABLE + '\n[tool.deploy.framework]\ntemplate = "bundled"\n'
        'install_to = "~/fw/CLAUDE.md"\n')

    done = command("deploy.framework", cwd=project)
    status = command("backups.status", "--json", cwd=project)

    assert done.returncode == 0, done.stderr
    shipped = Path(json.loads(status.stdout)["framework_template_path"])
    assert shipped.is_relative_to(installed.parent)
    assert not shipped.is_symlink() and not shipped.parent.is_symlink()
    expected = (REPO / "templates/framework/CLAUDE.md").read_bytes()
    assert shipped.read_bytes() == expected
    assert (scratch_home / "fw/CLAUDE.md").read_bytes() == expected


def test_config_flag_and_environment(command: Run, nested: Path, tmp_path: Path) -> None:
    """``--config FILE`` (before or after the task) and ``DEPLOY_CONFIG`` name the config
    from anywhere; ``--config`` wins."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "deploy.toml").write_text(TABLE)
    (other / "MEMORY_VERSION").write_text("041\n")

    flag_first = command("--config", str(other / "deploy.toml"), "versions.show", cwd=nested)
    flag_after = command("versions.show", "--config", str(other / "deploy.toml"), cwd=nested)
    from_env = command("versions.show", cwd=nested, DEPLOY_CONFIG=str(other / "deploy.toml"))
    both = command("--config", str(nested.parent.parent / "pyproject.toml"), "versions.show",
                   cwd=tmp_path, DEPLOY_CONFIG=str(other / "deploy.toml"))

    assert [d.stdout.split() for d in (flag_first, flag_after, from_env, both)] == [
        ["memory", "041"], ["memory", "041"], ["memory", "041"], ["memory", "003"]]


def test_no_config_found_is_exit_2_naming_where_it_looked(command: Run, tmp_path: Path) -> None:
    """A task in a folder with no config around it: one error line, exit 2."""
    no_config_above(tmp_path)

    done = command("versions.show", cwd=tmp_path)

    assert done.returncode == 2
    assert_one_error_line(done.stderr, f"in {tmp_path} or any folder above it")


def test_a_parse_error_of_the_installed_command(command: Run, tmp_path: Path) -> None:
    """The console script's parse errors are one error line, exit 2 (the checkout's Program
    is tried case by case in test_parse_errors.py)."""
    done = command("history", "--limit", "abc", cwd=tmp_path)

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "error: history: --limit takes an integer, not 'abc'")
