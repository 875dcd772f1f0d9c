"""Shared fixtures: a scratch project driven through the real ``invoke`` CLI.

Every test gets HOME pointed at a scratch folder; behaviour tests build a
project tree with ``Project.write({path: content})`` (copier's
``build_file_tree`` idea) and run ``invoke`` in a subprocess against it through
``DEPLOY_CONFIG``, the same door users use.

Tests of the many-hosts feature ask for ``ssh_hosts`` (and ``ssh_full_host``): real sshd
servers on loopback, one throwaway user each, built by ``tests/sshd.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import sshd

REPO = Path(__file__).resolve().parents[1]

BASE_CONFIG = """\
[tool.deploy]
state_dir = "state"

[tool.deploy.scripts]
source = "bin"
target = "target/bin"

[tool.deploy.versions]
dir = "versions"

[tool.deploy.framework]
template = "tpl/CLAUDE.md"
install_to = "target/framework/CLAUDE.md"
parents = []
"""
# The base config without framework.template: the default template (absent in a scratch
# project) is then a visible skip of `invoke deploy`, while a configured one that is
# missing is exit 2. Tests of other categories that run the whole release use this.
NO_FRAMEWORK_CONFIG = BASE_CONFIG.replace('template = "tpl/CLAUDE.md"\n', "")


@functools.cache
def frozen_at_start() -> int:
    """What ``gc.get_freeze_count()`` says in a bare interpreter of this Python, before
    anything froze: 0 on 3.11, a few hundred objects on 3.12."""
    return int(subprocess.run([sys.executable, "-c", "import gc; print(gc.get_freeze_count())"],
                              capture_output=True, text=True, check=True).stdout)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run the long sweeps marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long sweep: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def scratch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME at a scratch folder so nothing touches the real home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DEPLOY_PREFIX", raising=False)
    # A suite run inside a real Actions job must not append to that job's summary or
    # outputs, nor record its commit: tests that want Actions set these themselves.
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_WORKSPACE",
                 "GITHUB_SHA", "GITHUB_REF_NAME", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                 "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    return home


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``root`` (no symlink following): sha256 and mode."""
    result: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = "link:" + os.readlink(path)
            else:
                digest = "dir"
            result[rel] = (digest, stat.S_IMODE(st.st_mode))
    return result


@dataclass
class Project:
    """A scratch project: its files, its config, and the CLI to run against it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / "deploy.toml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def tree(self) -> Path:
        return self.root / "state" / "backups"

    @property
    def target(self) -> Path:
        return self.root / "target"

    def write(self, files: dict[str, str | bytes], mode: int | None = None) -> None:
        for rel, content in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            path.write_bytes(content)
            if mode is not None:
                path.chmod(mode)

    def configure(self, extra: str = "", *, base: str = BASE_CONFIG) -> None:
        self.config_path.write_text(base + textwrap.dedent(extra))

    def invoke(self, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "DEPLOY_CONFIG": str(self.config_path), **self.env,
                    **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
            cwd=self.root, env=full_env, capture_output=True, text=True, timeout=timeout,
            check=False)

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run and assert exit 0, showing stderr when it is not."""
        done = self.invoke(*args, **kwargs)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)

    def snapshot(self) -> dict[str, tuple[str, int]]:
        return snapshot(self.root)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A scratch project with the base config and an empty ``bin/``."""
    proj = Project(tmp_path / "proj")
    (proj.root / "bin").mkdir(parents=True)
    proj.configure()
    yield proj


def assert_one_error_line(stderr: str, *needles: str) -> None:
    """The contract's error shape: one ``error:`` line naming what went wrong, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)


# --- real sshd hosts on loopback (tests/sshd.py) ------------------------------------------

@pytest.fixture(scope="session")
def ssh_fleet() -> Iterator[sshd.Fleet]:
    """Hosts ``h1`` and ``h2``: two throwaway users, each behind its own sshd on 127.0.0.1.

    Started on first use, torn down (sshds stopped, users removed) at session end; skips
    where sshd cannot run (not root, no openssh-server, no useradd).
    """
    reason = sshd.unavailable()
    if reason:
        pytest.skip(reason)
    with sshd.Fleet.create() as fleet:
        fleet.add_host("h1")
        fleet.add_host("h2")
        yield fleet


@pytest.fixture
def ssh_hosts(ssh_fleet: sshd.Fleet) -> sshd.Fleet:
    """The session's fleet with every host up: one a failed test left stopped is restarted."""
    ssh_fleet.restart_stopped()
    return ssh_fleet


@pytest.fixture(scope="session")
def _ssh_full_host(ssh_fleet: sshd.Fleet) -> Iterator[sshd.Host]:
    """Adds ``h3`` to the fleet once, on first use; the fleet's teardown removes it."""
    try:
        host = ssh_fleet.add_host("h3", tmpfs_size="2m")
    except sshd.SSHDError as exc:
        if not str(exc).startswith("mount "):
            raise
        pytest.skip(f"cannot mount a tmpfs home: {exc}")
    yield host


@pytest.fixture
def ssh_full_host(_ssh_full_host: sshd.Host, ssh_hosts: sshd.Fleet) -> sshd.Host:
    """Host ``h3`` in the same fleet, its home a 2 MiB tmpfs (disk-full tests); up."""
    return _ssh_full_host
