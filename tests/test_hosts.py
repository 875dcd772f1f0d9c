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
    for rel in (".claude-pm", ".local", ".cache"):
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



def run(proj: Project, *args: str, env: dict[str, str] | None = None,
        tool: str = "invoke") -> subprocess.CompletedProcess[str]:
    """``invoke ARGS`` (or ``fab ARGS``) against the project, its output in any failure."""
    if tool == "invoke":
        return proj.invoke(*args, env=env)
    return subprocess.run([sys.executable, "-m", "fabric", "--search-root", str(REPO), *args],
                          cwd=proj.root, env={**os.environ, "DEPLOY_CONFIG": str(proj.config_path),
                                              **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


HOSTS_SCHEMA = json.loads((REPO / "schemas/hosts.json").read_text())


def documents(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The hosts of a ``--json`` document over many hosts, checked against its schema."""
    from jsonschema import Draft202012Validator

    document = json.loads(done.stdout)
    Draft202012Validator(HOSTS_SCHEMA).validate(document)
    hosts: dict[str, Any] = document["hosts"]
    return hosts


def test_json_history_and_rollback_stay_per_host(fleet_project: Project,
                                                 ssh_hosts: sshd.Fleet) -> None:
    """A rollback on h1 restores h1 only; each host's history is its own; ``--json`` is one
    document keyed by host; a rollback on both steps each back through its own runs."""
    h1, h2 = ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]
    fleet_project.ok("deploy.scripts", "--hosts", "both")
    fleet_project.write({"bin/greet": "#!/bin/sh\necho hello again\n"})
    second = documents(fleet_project.ok("deploy.scripts", "--hosts", "both", "--json",
                                        "--parallel", "2"))

    undone = documents(fleet_project.ok("rollback.scripts", "--hosts", "h1", "--json"))
    history = documents(fleet_project.ok("history", "--hosts", "h1,h2", "--json"))

    assert [c["action"] for c in second["h1"]["changes"]] == ["update"]
    assert second["h1"]["run"] == second["h2"]["run"] == 2
    assert list(undone) == ["h1"] and undone["h1"]["undoes"] == 2
    assert (h1.home / ".local/bin/greet").read_text() == "#!/bin/sh\necho hello\n"
    assert (h2.home / ".local/bin/greet").read_text() == "#!/bin/sh\necho hello again\n"
    assert [(r["id"], r["kind"], r["state"]) for r in history["h1"]["runs"]] == [
        (3, "rollback", "done"), (2, "deploy", "undone"), (1, "deploy", "done")]
    assert [(r["id"], r["kind"], r["state"]) for r in history["h2"]["runs"]] == [
        (2, "deploy", "done"), (1, "deploy", "done")]
    assert {r["actor"] for r in history["h2"]["runs"]} == {h2.user}

    both = documents(fleet_project.ok("rollback.scripts", "--hosts", "both", "--json"))

    assert (both["h1"]["undoes"], both["h2"]["undoes"]) == (1, 2)  # each steps back its own
    assert not (h1.home / ".local/bin/greet").exists()
    assert (h2.home / ".local/bin/greet").read_text() == "#!/bin/sh\necho hello\n"


def test_a_group_expands_in_order_once_each(fleet_project: Project) -> None:
    """``--hosts web`` (``["h2", "h1", "h2"]``) runs on h2 then h1, each once."""
    done = fleet_project.ok("backups.status", "--hosts", "web")

    assert done.stdout.count("== h2 ==") == done.stdout.count("== h1 ==") == 1
    assert done.stdout.index("== h2 ==") < done.stdout.index("== h1 ==")


def test_status_exit_code_is_the_drifted_hosts(fleet_project: Project,
                                               ssh_hosts: sshd.Fleet) -> None:
    """A script edited on h2 only: ``scripts.status`` says drifted there, synchronized on h1,
    and exits 3 (h2's), naming h2."""
    fleet_project.ok("deploy.scripts", "--hosts", "both")
    (ssh_hosts.hosts["h2"].home / ".local/bin/greet").write_text("#!/bin/sh\necho mine\n")

    done = fleet_project.invoke("scripts.status", "--hosts", "both")

    assert done.returncode == 3, done.stderr
    h1_part, h2_part = done.stdout.split("== h2 ==")
    assert "greet  synchronized" in h1_part and "greet  drifted" in h2_part, done.stdout
    assert "host h2:" in done.stderr and "host h1:" not in done.stderr


def test_an_unreachable_host_is_named_and_the_others_deploy(fleet_project: Project,
                                                            ssh_hosts: sshd.Fleet) -> None:
    """A closed port: that host is exit 1 with a line naming it; h1 deploys all the same."""
    closed = f"nobody@127.0.0.1:{sshd._free_port()}"

    done = fleet_project.invoke("deploy.scripts", "--hosts", f"{closed},h1", "--json")

    assert done.returncode == 1
    docs = documents(done)
    assert docs[closed]["error"]["exit_code"] == 1
    assert f"host {closed}: cannot connect" in docs[closed]["error"]["message"]
    assert docs["h1"]["run"] == 1
    assert f"error: host {closed}: cannot connect" in done.stderr
    assert (ssh_hosts.hosts["h1"].home / ".local/bin/greet").exists()


def test_a_conflict_on_one_host_blocks_only_that_host(fleet_project: Project,
                                                      ssh_hosts: sshd.Fleet) -> None:
    """A rendered file edited by hand on h2: h2 is blocked (exit 3) and untouched, h1 updates;
    the command exits 3."""
    h1, h2 = ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]
    fleet_project.ok("deploy", "--hosts", "both")
    edited = h2.home / ".claude-pm/memory.yaml"
    edited.write_text("memory: mine\n")
    fleet_project.write({"versions/MEMORY_VERSION": "004\n"})

    done = fleet_project.invoke("deploy", "--hosts", "both", "--json")

    assert done.returncode == 3, done.stderr
    docs = documents(done)
    assert docs["h2"]["error"]["exit_code"] == 3
    assert "memory.yaml" in docs["h2"]["error"]["message"]
    assert docs["h1"]["run"] == 2
    assert edited.read_text() == "memory: mine\n"
    assert (h1.home / ".claude-pm/memory.yaml").read_text().startswith("memory: 004\n")
    # Its hints, typed on the controller, act on h2, not on the controller's own tree.
    assert "`invoke templates.adopt --hosts h2`" in docs["h2"]["error"]["message"]


def test_all_or_none_rolls_the_others_back(fleet_project: Project,
                                           ssh_hosts: sshd.Fleet) -> None:
    """With ``--all-or-none`` the same conflict on h2 also rolls h1's run back, and both the
    output and the JSON say so for h1."""
    h1, h2 = ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]
    fleet_project.ok("deploy", "--hosts", "both")
    before = {h: sshd_snapshot(h) for h in (h1, h2)}
    (h2.home / ".claude-pm/memory.yaml").write_text("memory: mine\n")
    before[h2] = sshd_snapshot(h2)
    fleet_project.write({"versions/MEMORY_VERSION": "004\n", "bin/greet": "#!/bin/sh\necho 2\n"})

    done = fleet_project.invoke("deploy", "--hosts", "both", "--all-or-none", "--json")
    text = fleet_project.invoke("history", "--hosts", "h1", "--json")

    assert done.returncode == 3, done.stderr
    rolled = documents(done)["h1"]["rolled_back"]
    assert (rolled["undoes"], rolled["run"], rolled["because"], rolled["exit_code"]) == \
        (2, 3, ["h2"], 0)
    assert {h: sshd_snapshot(h) for h in (h1, h2)} == before
    assert [r["state"] for r in documents(text)["h1"]["runs"]] == ["done", "undone", "done"]

    again = fleet_project.invoke("deploy", "--hosts", "both", "--all-or-none")
    assert "rolled back run 4 as run 5 because h2 failed" in again.stdout, again.stdout


def sshd_snapshot(host: sshd.Host) -> dict[str, str]:
    """sha256 of every deployed target on a host (its scripts and rendered files)."""
    found = {}
    for rel in (".local/bin/greet", ".local/bin/tool", ".claude-pm/memory.yaml",
                ".claude-pm/framework/CLAUDE.md"):
        path = host.home / rel
        found[rel] = sha(path) if path.exists() else "absent"
    return found


def test_fab_dash_h_is_the_same_command(fleet_project: Project, ssh_hosts: sshd.Fleet,
                                        tmp_path: Path) -> None:
    """``fab -H h1,h2 deploy.scripts`` deploys both (fabfile.py, fabric.json); and under
    Fabric's own per-host executor a task still runs on the Connection it is given."""
    done = run(fleet_project, "-H", "h1,h2", "deploy.scripts", tool="fab")
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("== h1 ==") < done.stdout.index("== h2 ==")
    for host in ssh_hosts.hosts.values():
        if host.alias in ("h1", "h2"):
            assert sha(host.home / ".local/bin/tool") == sha(fleet_project.root / "bin/tool")
    plain = tmp_path / "plain.json"
    plain.write_text('{"tasks": {"executor_class": "fabric.executor.Executor"}}')

    each = run(fleet_project, "-f", str(plain), "-H", "h2,h1", "history", "--json", tool="fab")

    assert each.returncode == 0, each.stderr
    parts = [json.loads(p) for p in each.stdout.replace("}\n{", "}\n\0{").split("\0")]
    assert [list(p["hosts"]) for p in parts] == [["h2"], ["h1"]]
    assert [r["kind"] for r in parts[1]["hosts"]["h1"]["runs"]] == ["deploy"]


def test_a_host_lost_mid_release_is_unknown_and_its_next_run_recovers(
        fleet_project: Project, ssh_hosts: sshd.Fleet) -> None:
    """sshd stopped (and the host side killed) after the backups and before any target:
    the host is reported unknown with the command that checks it; once it is back, its next
    run records the killed run as interrupted and deploys, every target whole. While it
    held h1's lock, another command got exit 4 for h1 and deployed h2."""
    h1 = ssh_hosts.hosts["h1"]
    fleet_project.ok("deploy.scripts", "--hosts", "h1")
    fleet_project.write({"bin/greet": "#!/bin/sh\necho new\n"})
    marker = h1.home / "paused"
    env = {**os.environ, "DEPLOY_CONFIG": str(fleet_project.config_path),
           "DEPLOY_TEST_HOST_PAUSE": "~/paused"}
    child = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "deploy.scripts",
         "--hosts", "h1"], cwd=fleet_project.root, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.communicate(timeout=60)
        locked = fleet_project.invoke("deploy.scripts", "--hosts", "h1,h2", "--json")
        ssh_hosts.stop(h1)  # the sshd, its sessions and the user's processes (SIGKILL)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        ssh_hosts.start(h1)

    assert locked.returncode == 4, locked.stderr  # h1's lock is held; h2 deployed
    assert documents(locked)["h1"]["error"]["exit_code"] == 4
    assert documents(locked)["h2"]["run"] == 1
    assert child.returncode == 1, (stdout, stderr)
    assert "error: host h1: connection lost during the run" in stderr
    assert "state is unknown: check it with `invoke history --hosts h1`" in stderr
    assert (h1.home / ".local/bin/greet").read_text() == "#!/bin/sh\necho hello\n"  # old bytes
    marker.unlink()
    left = [p for p in Path("/tmp").glob("claude-pm-deploy.*") if p.stat().st_uid == h1.uid]
    assert len(left) == 1, left  # the lost run's folder, with its bundle
    day_old = time.time() - 86400 - 120
    os.utime(left[0], (day_old, day_old))
    young = Path("/tmp/claude-pm-deploy.another-run")  # a run still going: not a day old
    young.mkdir()
    os.chown(young, h1.uid, h1.uid)
    history = documents(fleet_project.ok("history", "--hosts", "h1", "--json"))["h1"]["runs"]
    assert [r["state"] for r in history] == ["running", "done"], history
    assert not left[0].exists() and young.is_dir()
    young.rmdir()

    again = fleet_project.ok("deploy.scripts", "--hosts", "h1")

    assert "note: run 2 was killed part way; recorded as interrupted" in again.stdout
    assert (h1.home / ".local/bin/greet").read_text() == "#!/bin/sh\necho new\n"
    history = documents(fleet_project.ok("history", "--hosts", "h1", "--json"))["h1"]["runs"]
    assert [r["state"] for r in history] == ["done", "interrupted", "done"]


def test_a_full_disk_fails_that_host_whole(ssh_full_host: sshd.Host, ssh_hosts: sshd.Fleet,
                                           fleet_project: Project, scratch_home: Path) -> None:
    """h3's home is a 2 MiB tmpfs: a 3 MiB script fails there (exit 1, nothing of the run
    left), and lands on h1."""
    (scratch_home / ".ssh/config").write_text(ssh_hosts.ssh_config.read_text())  # with h3
    clear_host(ssh_full_host)
    fleet_project.write({"bin/big": os.urandom(3 * 1024 * 1024)})

    done = fleet_project.invoke("deploy.scripts", "--hosts", "h1,h3", "--json")

    assert done.returncode == 1, done.stderr
    docs = documents(done)
    assert docs["h3"]["error"]["exit_code"] == 1, docs["h3"]
    assert "host h3:" in done.stderr
    assert not (ssh_full_host.home / ".local/bin/big").exists()
    assert not (ssh_full_host.home / ".local/bin/greet").exists()
    assert sha(ssh_hosts.hosts["h1"].home / ".local/bin/big") == sha(fleet_project.root / "bin/big")


def test_github_step_summary_has_a_section_per_host(fleet_project: Project,
                                                    tmp_path: Path) -> None:
    """Under GitHub Actions each host's step summary (written on the host) is appended to the
    runner's, under the host's name."""
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}

    fleet_project.ok("deploy.scripts", "--hosts", "both", env=env)

    text = summary.read_text()
    assert text.index("## host `h1`") < text.index("## host `h2`")
    assert text.count("greet") == 2, text
    assert "invoke rollback.release --run 1 --hosts h1" in text
    assert "invoke rollback.release --run 1 --hosts h2" in text


def test_github_outputs_fold_every_hosts(fleet_project: Project, ssh_hosts: sshd.Fleet,
                                         tmp_path: Path) -> None:
    """Under GitHub Actions the command writes one set of step outputs: the outcome, every
    host's changes, one undo line per host (with --hosts), and each host's own values;
    a host blocked by a conflict makes the outcome ``blocked``."""
    from tests.test_actions_cli import parse_outputs

    def outputs(*args: str, code: int = 0) -> dict[str, str]:
        output = tmp_path / "output.txt"
        output.write_text("")
        done = fleet_project.invoke(*args, env={"GITHUB_ACTIONS": "true",
                                                "GITHUB_OUTPUT": str(output)})
        assert done.returncode == code, done.stderr
        return parse_outputs(output.read_text())

    first = outputs("deploy.scripts", "--hosts", "both")
    again = outputs("deploy.scripts", "--hosts", "both")
    fleet_project.ok("deploy.templates", "--hosts", "both")
    (ssh_hosts.hosts["h2"].home / ".claude-pm/memory.yaml").write_text("memory: mine\n")
    fleet_project.write({"versions/MEMORY_VERSION": "004\n"})
    blocked = outputs("deploy.templates", "--hosts", "both", code=3)

    assert (first["outcome"], first["changed"], first["run"]) == ("changed", "4", "")
    assert first["undo"].splitlines() == ["invoke rollback.release --run 1 --hosts h1",
                                          "invoke rollback.release --run 1 --hosts h2"]
    hosts = json.loads(first["hosts"])
    assert {h: (v["run"], v["changed"], v["exit_code"]) for h, v in hosts.items()} == \
        {"h1": (1, 2, 0), "h2": (1, 2, 0)}
    assert (again["outcome"], again["changed"], again["undo"]) == ("unchanged", "0", "")
    assert (blocked["outcome"], blocked["changed"]) == ("blocked", "1")
    assert blocked["undo"] == "invoke rollback.release --run 3 --hosts h1"
    assert json.loads(blocked["hosts"])["h2"]["outcome"] == "blocked"


def test_dry_run_on_hosts_writes_nothing_there(fleet_project: Project,
                                               ssh_hosts: sshd.Fleet) -> None:
    """``--dry-run`` prints each host's plan and leaves every home as it was."""
    homes = {h.alias: sorted(p.name for p in h.home.iterdir())
             for h in ssh_hosts.hosts.values()}

    done = fleet_project.ok("deploy", "--hosts", "both", "--dry-run")

    assert done.stdout.count("would create") == 8, done.stdout
    assert {h.alias: sorted(p.name for p in h.home.iterdir())
            for h in ssh_hosts.hosts.values()} == homes


def test_the_bundled_framework_template_reaches_each_host(fleet_project: Project,
                                                          ssh_hosts: sshd.Fleet) -> None:
    """``framework.template = "bundled"``: the controller's shipped template, which lies
    outside the project, is what each host installs."""
    fleet_project.config_path.write_text(CONFIG.replace('"tpl/framework/CLAUDE.md"',
                                                        '"bundled"'))

    fleet_project.ok("deploy.framework", "--hosts", "both")

    for host in (ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]):
        assert sha(host.home / ".claude-pm/framework/CLAUDE.md") == \
            sha(REPO / "templates/framework/CLAUDE.md")


def test_each_host_keeps_the_host_side_and_runs_only_a_checked_copy(
        fleet_project: Project, ssh_hosts: sshd.Fleet) -> None:
    """The zipapp is sent once: the host keeps it in its user's ~/.cache (a 0700 folder)
    under its sha256, and the next command copies it from there instead. A cached copy
    that does not hash right is sent again and replaced, never run."""
    h1 = ssh_hosts.hosts["h1"]
    cache = h1.home / ".cache/claude-pm-deploy"

    first = fleet_project.ok("history", "--hosts", "h1", "--verbose")
    [cached] = cache.glob("host-*.pyz")
    sha = cached.name.removeprefix("host-").removesuffix(".pyz")
    second = fleet_project.ok("history", "--hosts", "h1", "--verbose")
    cached.write_bytes(b"not the host side\n")
    third = fleet_project.ok("history", "--hosts", "h1", "--verbose")

    assert (cache.stat().st_mode & 0o777, cache.stat().st_uid) == (0o700, h1.uid)
    assert "in its cache; not sent" not in first.stderr
    assert f"host h1: the host side {sha[:12]} is in its cache; not sent" in second.stderr
    assert "in its cache; not sent" not in third.stderr
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    assert [p.name for p in cache.iterdir()] == [cached.name]


def test_an_unknown_host_key_is_refused(fleet_project: Project, scratch_home: Path,
                                        tmp_path: Path) -> None:
    """Fabric would accept any host key; here one missing from known_hosts refuses the host."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = scratch_home / ".ssh/config"
    lines = [f"    UserKnownHostsFile {empty}" if "UserKnownHostsFile" in line else line
             for line in config.read_text().splitlines()]
    config.write_text("\n".join(lines) + "\n")

    done = fleet_project.invoke("history", "--hosts", "h1")

    assert done.returncode == 1
    assert "error: host h1: cannot connect:" in done.stderr
    assert "not found in known_hosts" in done.stderr


def test_ctrl_c_lets_the_running_host_finish_and_starts_no_other(
        fleet_project: Project, ssh_hosts: sshd.Fleet) -> None:
    """SIGINT while h1 runs (held between its backups and its targets): h1's run finishes
    whole, h2 is never started (exit 130 for it), and the command exits 130 saying so."""
    h1, h2 = ssh_hosts.hosts["h1"], ssh_hosts.hosts["h2"]
    marker = h1.home / "paused"
    env = {**os.environ, "DEPLOY_CONFIG": str(fleet_project.config_path),
           "DEPLOY_TEST_HOST_PAUSE": "~/paused"}
    child = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "deploy.scripts",
         "--hosts", "h1,h2", "--json"], cwd=fleet_project.root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.communicate(timeout=60)
        child.send_signal(signal.SIGINT)
        assert child.stderr is not None
        first = child.stderr.readline()  # the controller took the SIGINT: now let h1 go on
        marker.unlink()
        stdout, stderr = child.communicate(timeout=60)
        stderr = first + stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()

    assert child.returncode == 130, (stdout, stderr)
    docs = json.loads(stdout)["hosts"]
    assert docs["h1"]["run"] == 1
    assert docs["h2"]["error"] == {"message": "host h2: not started: interrupted",
                                   "exit_code": 130}
    assert first == ("interrupted: waiting for h1 to finish (each all or nothing); no further "
                     "host starts\n")
    assert "no other host was started" in stderr
    assert sha(h1.home / ".local/bin/greet") == sha(fleet_project.root / "bin/greet")
    assert not (h2.home / ".local").exists()
