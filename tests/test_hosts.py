"""Many hosts over real OpenSSH (issue 15): the same tasks on h1, h2 (and h3, a full disk).

Each host is a throwaway local user behind its own sshd on loopback (``tests/sshd.py``); its
home is read directly (we are root) to check what landed there against the sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import sshd
from tests.conftest import REPO, Project

pytestmark = [pytest.mark.ssh, pytest.mark.root]

CONFIG = """\
[tool.deploy]
state_dir = "~/.claude-pm"

[tool.deploy.scripts]
source = "bin"
target = "~/.local/bin"

[tool.deploy.versions]
dir = "versions"

[tool.deploy.framework]
template = "tpl/framework/CLAUDE.md"
install_to = "~/.claude-pm/framework/CLAUDE.md"

[[tool.deploy.templates]]
id = "memory"
source = "tpl/memory.yaml.j2"
target = "~/.claude-pm/memory.yaml"

[tool.deploy.hosts]
both = ["h1", "h2"]
web = ["h2", "h1", "h2"]
"""

FILES: dict[str, str | bytes] = {
    "bin/greet": "#!/bin/sh\necho hello\n",
    "bin/tool": b"#!/bin/sh\nprintf 'bytes \\377\\r\\n'\n",
    "versions/MEMORY_VERSION": "003\n",
    "versions/VERSION": "1.2.0\n",
    "tpl/framework/CLAUDE.md": "# Framework {{ FRAMEWORK_VERSION }}\nfrom {{ DEPLOYMENT_DIR }}\n",
    "tpl/memory.yaml.j2": "memory: {{ versions.memory }}\nfrom: {{ DEPLOYMENT_DIR }}\n"
                          "note: {{ note }}\n",
}


def clear_host(host: sshd.Host) -> None:
    """Remove what an earlier test deployed on a host (its tree, targets and temp files)."""
    for rel in (".claude-pm", ".local"):
        shutil.rmtree(host.home / rel, ignore_errors=True)
    for leftover in Path("/tmp").glob("claude-pm-deploy.*"):
        if leftover.stat().st_uid == host.uid:
            shutil.rmtree(leftover, ignore_errors=True)


@pytest.fixture
def fleet_project(ssh_hosts: sshd.Fleet, tmp_path: Path, scratch_home: Path) -> Project:
    """A project whose targets are ``~``-based, the hosts cleared, and ``~/.ssh/config``
    (HOME is the scratch home) naming the fleet's aliases."""
    for host in ssh_hosts.hosts.values():
        clear_host(host)
    ssh_dir = scratch_home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(ssh_hosts.ssh_config.read_text())
    proj = Project(tmp_path / "proj")
    proj.write(FILES)
    proj.config_path.write_text(CONFIG + '\n[tool.deploy.context]\nnote = "hi"\n')
    return proj


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deploy_lands_each_hosts_own_bytes_in_its_own_home(
        fleet_project: Project, ssh_hosts: sshd.Fleet) -> None:
    """``deploy --hosts h1,h2``: each home gets the scripts byte for byte, mode 0755, owned by
    that host's user, its own tree and index, and a section per host in the output."""
    done = fleet_project.ok("deploy", "--hosts", "h1,h2")

    assert done.stdout.index("== h1 ==") < done.stdout.index("== h2 ==")
    for host in (ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]):
        for name in ("greet", "tool"):
            landed = host.home / ".local/bin" / name
            assert sha(landed) == sha(fleet_project.root / "bin" / name)
            assert (landed.stat().st_mode & 0o777, landed.stat().st_uid) == (0o755, host.uid)
        installed = host.home / ".claude-pm/framework/CLAUDE.md"
        assert sha(installed) == sha(fleet_project.root / "tpl/framework/CLAUDE.md")
        assert (host.home / ".claude-pm/memory.yaml").read_text() == \
            f"memory: 003\nfrom: {fleet_project.root}\nnote: hi\n"
        assert installed.stat().st_uid == host.uid
        assert (host.home / ".claude-pm/backups").stat().st_uid == host.uid
    assert not [p for p in Path("/tmp").glob("claude-pm-deploy.*")
                if p.stat().st_uid in {h.uid for h in ssh_hosts.hosts.values()}]
