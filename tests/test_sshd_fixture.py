"""The sshd fixture itself (tests/sshd.py): real OpenSSH servers on loopback, one user each."""

from __future__ import annotations

import errno
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import fabric
import paramiko
import pytest

from tests import sshd
from tests.conftest import REPO

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def test_host_runs_python_311_over_openssh(ssh_hosts: sshd.Fleet) -> None:
    """``ssh -F <config> h1`` runs the hosts' Python, and it is 3.11 or newer."""
    done = subprocess.run(
        ["ssh", "-F", str(ssh_hosts.ssh_config), "h1",
         f"{ssh_hosts.python} -c 'import sys; print(sys.version_info >= (3, 11))'"],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")


def test_each_host_is_its_own_user_and_home(ssh_hosts: sshd.Fleet) -> None:
    """Every host answers with its own user, uid and home, as its record says."""
    seen = []
    for host in ssh_hosts.hosts.values():
        done = ssh_hosts.ssh(host, 'echo "$HOME"; id -un; id -u')
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.split("\n")[:3])
        assert seen[-1] == [str(host.home), host.user, str(host.uid)]
        assert pwd.getpwnam(host.user).pw_dir == str(host.home)
    assert len({home for home, _user, _uid in seen}) == len(seen) >= 2
    assert len({user for _home, user, _uid in seen}) == len(seen)


def test_fabric_runs_and_puts_a_file_owned_by_the_host_user(ssh_hosts: sshd.Fleet,
                                                           tmp_path: Path) -> None:
    """A Fabric Connection by alias runs a command and puts a file that lands intact as the user."""
    host = ssh_hosts.hosts["h2"]
    payload = os.urandom(300_000) + b"\0\r\n\xff end"
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    config = fabric.Config(runtime_ssh_path=str(ssh_hosts.ssh_config))
    with fabric.Connection("h2", config=config) as conn:
        # in_stream=False: Invoke would otherwise read pytest's captured stdin and fail
        assert conn.run("id -un", hide=True, in_stream=False).stdout == host.user + "\n"
        conn.put(str(local), "payload.bin")  # relative to the login's home
        remote = conn.run(f"{host.python} -c \"import hashlib; print(hashlib.sha256("
                          f"open('payload.bin', 'rb').read()).hexdigest())\"",
                          hide=True, in_stream=False)
    assert remote.stdout.strip() == hashlib.sha256(payload).hexdigest()
    landed = host.home / "payload.bin"
    assert landed.read_bytes() == payload
    assert (landed.stat().st_uid, landed.stat().st_gid) == (host.uid, host.gid)


def test_fabric_connection_checks_the_host_key(ssh_hosts: sshd.Fleet, tmp_path: Path) -> None:
    """The fixture's strict Connection accepts the known host key and refuses an unknown one."""
    with ssh_hosts.connection("h1") as conn:
        assert conn.run("true", hide=True).ok
    stranger = ssh_hosts.connection("h1")
    stranger.client.get_host_keys().clear()
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        stranger.open()
    stranger.close()


def test_stop_refuses_new_connections_and_start_brings_the_host_back(
        ssh_hosts: sshd.Fleet) -> None:
    """``stop(host)`` drops its sessions and refuses new ones clearly; ``start`` restores it."""
    host = ssh_hosts.hosts["h1"]
    held = ssh_hosts.connection(host)
    held.open()
    ssh_hosts.stop(host)
    assert not ssh_hosts.is_running(host)

    done = ssh_hosts.ssh(host, "true")
    assert done.returncode == 255
    assert f"port {host.port}: Connection refused" in done.stderr, done.stderr
    with pytest.raises(paramiko.ssh_exception.NoValidConnectionsError,
                       match=f"Unable to connect to port {host.port} on 127.0.0.1"):
        ssh_hosts.connection(host).open()
    deadline = time.monotonic() + 30  # the open session went down with the host (late: load)
    while held.is_connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not held.is_connected
    held.close()
    assert ssh_hosts.ssh("h2", "true").returncode == 0  # the other host never noticed

    ssh_hosts.start(host)
    assert ssh_hosts.ssh(host, "id -un").stdout == host.user + "\n"
    with ssh_hosts.connection(host) as conn:  # same port, same host key: known_hosts still fits
        assert conn.run("id -un", hide=True).stdout == host.user + "\n"


def test_tmpfs_host_runs_out_of_space(ssh_full_host: sshd.Host, ssh_hosts: sshd.Fleet) -> None:
    """Writing 3 MiB into the 2 MiB tmpfs home fails with ENOSPC on the host."""
    assert os.path.ismount(ssh_full_host.home)
    assert ssh_full_host.home.stat().st_uid == ssh_full_host.uid
    script = textwrap.dedent("""\
        import errno
        try:
            with open("big", "wb") as out:
                for _ in range(3):
                    out.write(b"x" * 1048576)
                    out.flush()
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        else:
            print("wrote it all")
        """)
    done = ssh_hosts.ssh(ssh_full_host, ssh_full_host.python, "-", input=script)
    assert (done.returncode, done.stdout) == (0, errno.errorcode[errno.ENOSPC] + "\n"), done.stderr
    assert ssh_hosts.ssh(ssh_full_host, "rm big").returncode == 0


@pytest.fixture
def crash_base() -> Iterator[Path]:
    reason = sshd.unavailable()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="deploy-sshd-crashtest-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        sshd.clean_stale(base)
        shutil.rmtree(base, ignore_errors=True)


CRASHING_RUN = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests import sshd
fleet = sshd.Fleet.create(Path({base!r}), lock_path=Path({lock!r}), pdeathsig=False)
fleet.add_host("hx1")
fleet.add_host("hx2", tmpfs_size="1m")
print(fleet.root, flush=True)
time.sleep(120)
"""


def test_next_run_cleans_what_a_killed_run_left(crash_base: Path) -> None:
    """What a SIGKILLed run leaves (sshds, users, a mount, a folder) the next run clears."""
    lock = crash_base / "lock"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN.format(repo=str(REPO), base=str(crash_base),
                                                   lock=str(lock))],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    root = child.stdout.readline().strip()
    assert root.startswith(str(crash_base)), root
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()

    def leftovers() -> list[str]:
        found = [f"sshd {pid}" for pid, _pp, _uid, argv in sshd._processes()
                 if sshd._is_fleet_sshd(argv, root)]
        found += [e.pw_name for e in pwd.getpwall() if e.pw_dir.startswith(root)]
        found += [f"mount {point}" for point in sshd._mounts_under(root)]
        return found + ([root] if os.path.exists(root) else [])

    assert len(leftovers()) == 6, leftovers()  # two sshds, two users, the tmpfs, the folder
    started = time.monotonic()
    with sshd.Fleet.create(crash_base, lock_path=lock, lock_timeout=10) as fresh:
        assert leftovers() == []
        host = fresh.add_host("hx1")  # the same name again, now a fresh user
        assert fresh.ssh(host, "id -un").stdout == "deploy-hx1\n"
    assert time.monotonic() - started < 20
    assert leftovers() == []
    assert "deploy-hx1" not in {e.pw_name for e in pwd.getpwall()}
