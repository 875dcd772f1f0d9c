"""Real OpenSSH servers on loopback for the many-hosts tests: throwaway users, keys, one sshd each.

A ``Fleet`` owns one scratch folder (``/tmp/deploy-sshd-run-*``, mode 0755 so every user can
reach a home in it) holding a host key, one client key pair, a ``known_hosts``, an OpenSSH
client config with an alias per host (``h1``, ``h2``, ...) and, per host, a home, an sshd config,
a pid file and a log. Each host is a local user (``deploy-h1``...) served by its own
``/usr/sbin/sshd -D -e -f <config>`` on ``127.0.0.1`` and a free high port, started as root.

Needs root, ``/usr/sbin/sshd`` (openssh-server) and the shadow tools (``useradd``); see
``unavailable()``. Only one fleet exists on a machine at a time: ``Fleet.create`` takes an
exclusive lock, and whatever an earlier run left behind while holding it (a crashed run's sshd,
its users, a tmpfs home still mounted, its scratch folder) is stale by definition and is cleaned
first. Each sshd is also started under ``setpriv --pdeathsig`` where that exists, so it dies
with the test process even when that process is SIGKILLed.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

SSHD = "/usr/sbin/sshd"
#: The interpreter every host user can run (Debian's; pyenv's under /root is unreadable to them).
HOST_PYTHON = "/usr/bin/python3"
USER_PREFIX = "deploy-"
RUN_PREFIX = "deploy-sshd-run-"
BASE = Path("/tmp")
LOCK = Path("/run/deploy-sshd.lock") if os.path.isdir("/run") else BASE / "deploy-sshd.lock"
TOOLS = ("useradd", "userdel", "usermod", "ssh-keygen", "ssh")


class SSHDError(RuntimeError):
    """An sshd that would not start or stop, with what it said."""


def unavailable() -> str | None:
    """Why no sshd can be started here, or None when it can."""
    if os.geteuid() != 0:
        return "the sshd fixture needs root (useradd, sshd as root)"
    if not os.access(SSHD, os.X_OK):
        return f"no {SSHD}: apt-get install openssh-server (.ci/run does)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (passwd / openssh-client packages)"
    return None


@dataclass(frozen=True)
class Host:
    """One host: its ssh alias, its local user and the sshd serving it."""

    alias: str      # "h1": the Host in the client config, for ``ssh -F`` and Fabric alike
    user: str       # "deploy-h1"
    port: int       # sshd's port on 127.0.0.1
    home: Path      # the user's home (a tmpfs of ``tmpfs_size`` when set)
    uid: int
    gid: int
    python: str     # an interpreter >= 3.11 the user can run
    tmpfs_size: str | None = None

    @property
    def address(self) -> str:
        return f"[127.0.0.1]:{self.port}"


def _run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise SSHDError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr.strip()}")
    return done


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes, found through /proc --------------------------------------------------------

def _processes() -> Iterator[tuple[int, int, int, list[str]]]:
    """(pid, ppid, real uid, argv) of every process that can still be read."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        yield (int(entry.name), int(fields["PPid"]), int(fields["Uid"].split()[0]),
               [arg.decode(errors="replace") for arg in argv if arg])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid, _uid, _argv in _processes():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                and "Z" not in _state(pid)]
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _kill_uid(uid: int) -> None:
    pids = [pid for pid, _ppid, puid, _argv in _processes() if puid == uid]
    _kill(pids)
    _wait_gone(pids)


# --- users -------------------------------------------------------------------------------

def _remove_user(name: str) -> None:
    """Remove a throwaway user: its processes, a tmpfs on its home, then ``userdel -r``.

    Only a user whose home is in a fleet's folder: a ``deploy-h1`` made by anything else is
    not this module's to delete.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if "/" + RUN_PREFIX not in entry.pw_dir:
        raise SSHDError(f"user {name} exists with home {entry.pw_dir}, outside any "
                        f"{RUN_PREFIX}* folder: not made by tests/sshd.py, left alone")
    _kill_uid(entry.pw_uid)
    home = os.path.realpath(entry.pw_dir)
    while os.path.ismount(home):
        _run("umount", "-l", home, check=False)
    done = _run("userdel", "-r", name, check=False)
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    raise SSHDError(f"userdel -r {name} left the user: {done.stderr.strip()}")


def _mounts_under(prefix: str) -> list[str]:
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _is_fleet_sshd(argv: list[str], root: str) -> bool:
    """Whether a command line is a fleet's sshd listener under ``root``.

    The listener retitles itself (``sshd: /usr/sbin/sshd -D -e -f <config> [listener] 0 of
    100-100 startups``, one argument), so match the joined line, not argv[0].
    """
    return f"{SSHD} -D -e -f {root}" in " ".join(argv)


def clean_stale(base: Path = BASE) -> list[str]:
    """Remove what an earlier run left; call only while holding the lock. Says what it did."""
    did = []
    stale_root = str(base / RUN_PREFIX)
    for pid, _ppid, _uid, argv in list(_processes()):
        if _is_fleet_sshd(argv, stale_root):
            tree = [pid, *_descendants(pid)]
            _kill(tree)
            _wait_gone(tree)
            did.append(f"killed stale sshd {pid}")
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(USER_PREFIX + "h") and entry.pw_dir.startswith(stale_root):
            _remove_user(entry.pw_name)
            did.append(f"removed stale user {entry.pw_name}")
    for point in _mounts_under(stale_root):
        _run("umount", "-l", point, check=False)
        did.append(f"unmounted {point}")
    for folder in base.glob(RUN_PREFIX + "*"):
        shutil.rmtree(folder, ignore_errors=True)
        did.append(f"removed {folder}")
    return did


# --- the fleet ---------------------------------------------------------------------------

SSHD_CONFIG = """\
# Written by tests/sshd.py for one throwaway host; loopback only.
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers {user}
StrictModes yes
PermitRootLogin no
X11Forwarding no
AllowAgentForwarding no
PrintMotd no
PrintLastLog no
UseDNS no
# Many-hosts tests open connections in parallel; sshd's default drops some past 10 unauthenticated.
MaxStartups 100
Subsystem sftp internal-sftp
LogLevel {log_level}
"""

CLIENT_ENTRY = """\
Host {alias}
    HostName 127.0.0.1
    Port {port}
    User {user}
    IdentityFile {key}
    IdentitiesOnly yes
    UserKnownHostsFile {known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    ControlMaster no
    LogLevel ERROR
"""


@dataclass
class _Server:
    config: Path
    log: Path
    pid_file: Path
    proc: subprocess.Popen[bytes] | None = None


class Fleet:
    """Throwaway hosts on loopback; see the module docstring. Build with ``Fleet.create()``."""

    def __init__(self, root: Path, lock: IO[str], log_level: str = "VERBOSE",
                 pdeathsig: bool = True) -> None:
        self.root = root
        self._lock = lock
        self.log_level = log_level
        self.pdeathsig = pdeathsig
        self.python = HOST_PYTHON
        self.host_key = root / "host_key"
        self.key = root / "id_ed25519"            # the client's private key (root's, 0600)
        self.known_hosts = root / "known_hosts"
        self.ssh_config = root / "ssh_config"
        self.hosts: dict[str, Host] = {}
        self._servers: dict[str, _Server] = {}
        self._mounts: list[Path] = []

    # building and tearing down

    @classmethod
    def create(cls, base: Path = BASE, *, lock_path: Path = LOCK, lock_timeout: float = 300,
               log_level: str = "VERBOSE", pdeathsig: bool = True) -> Fleet:
        """Take the machine-wide lock, clean what a crashed run left, make keys and folders.

        ``base`` must be a folder every user can traverse. ``pdeathsig=False`` lets an sshd
        outlive this process (the crash-cleanup test uses it).
        """
        reason = unavailable()
        if reason:
            raise SSHDError(reason)
        lock = open(lock_path, "a+")  # noqa: SIM115 - held for the fleet's life, closed by close()
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise SSHDError(f"another test session has held {lock_path} for "
                                    f"{lock_timeout:.0f}s (see its pid inside)") from None
                time.sleep(0.2)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            clean_stale(base)
            root = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=base))
            root.chmod(0o755)  # every host user walks through it to their home
            fleet = cls(root, lock, log_level, pdeathsig)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy-sshd host",
                 "-f", str(fleet.host_key))
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy-sshd client",
                 "-f", str(fleet.key))
            fleet._write_client_files()
        except BaseException:
            lock.close()
            raise
        return fleet

    def close(self) -> None:
        """Stop every sshd, unmount tmpfs homes, remove the users and the folder; release."""
        errors = []
        try:
            for alias in list(self.hosts):
                try:
                    self.stop(alias)
                except Exception as exc:  # keep tearing down the rest
                    errors.append(f"{alias}: {exc}")
            for alias, host in list(self.hosts.items()):
                try:
                    self._drop_user(host)
                except Exception as exc:
                    errors.append(f"{alias}: {exc}")
                del self.hosts[alias]
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            self._lock.close()
        if errors:
            raise SSHDError("fleet teardown: " + "; ".join(errors))

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, alias: str, *, tmpfs_size: str | None = None) -> Host:
        """A new user ``deploy-<alias>`` with the client key authorized, and its sshd started.

        With ``tmpfs_size`` (``"2m"``) the home is a tmpfs of that size, for disk-full tests.
        """
        if alias in self.hosts:
            raise ValueError(f"host {alias} exists")
        user = USER_PREFIX + alias
        folder = self.root / alias
        folder.mkdir(mode=0o755)
        home = folder / "home"
        _remove_user(user)  # left by a run whose folder was elsewhere: recreate it
        _run("useradd", "-m", "-d", str(home), "-s", "/bin/sh", "-U", user)
        # useradd leaves the password "!": with UsePAM no, sshd reads that as a locked account
        # and refuses even a key. "*" is unlocked but matches no password.
        _run("usermod", "-p", "*", user)
        entry = pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
        try:
            if tmpfs_size is not None:
                _run("mount", "-t", "tmpfs", "-o", f"size={tmpfs_size},mode=0755", "tmpfs",
                     str(home))
                self._mounts.append(home)
            os.chown(home, uid, gid)
            home.chmod(0o755)  # StrictModes: the home may not be group or world writable
            ssh_dir = home / ".ssh"
            ssh_dir.mkdir(mode=0o700)
            keys = ssh_dir / "authorized_keys"
            keys.write_bytes(self.key.with_suffix(".pub").read_bytes())
            keys.chmod(0o600)
            os.chown(ssh_dir, uid, gid)
            os.chown(keys, uid, gid)
            host = Host(alias=alias, user=user, port=_free_port(), home=home, uid=uid, gid=gid,
                        python=self.python, tmpfs_size=tmpfs_size)
            self.hosts[alias] = host
            self._servers[alias] = _Server(config=folder / "sshd_config",
                                           log=folder / "sshd.log",
                                           pid_file=folder / "sshd.pid")
            self._start_on_free_port(host)
        except BaseException:
            self.hosts.pop(alias, None)
            server = self._servers.pop(alias, None)
            if server is not None:
                self._stop_server(server)
            self._drop_user(Host(alias, user, 0, home, uid, gid, self.python, tmpfs_size))
            raise
        self._write_client_files()
        return self.hosts[alias]

    def _drop_user(self, host: Host) -> None:
        try:
            _kill_uid(host.uid)
        finally:
            if host.home in self._mounts:
                try:
                    _run("umount", str(host.home), check=False)
                    if os.path.ismount(host.home):
                        _run("umount", "-l", str(host.home))
                finally:
                    self._mounts.remove(host.home)
            _remove_user(host.user)

    def _start_on_free_port(self, host: Host, tries: int = 5) -> None:
        """Start a new host's sshd; a port taken between probe and bind gets another port."""
        for attempt in range(tries):
            try:
                self.start(host)
                return
            except SSHDError as exc:
                if "Address already in use" not in str(exc) or attempt == tries - 1:
                    raise
                host = replace(host, port=_free_port())
                self.hosts[host.alias] = host

    # the client side

    def _write_client_files(self) -> None:
        pub = self.host_key.with_suffix(".pub").read_text().split()
        key_type, blob = pub[0], pub[1]
        lines = [f"{host.address} {key_type} {blob}\n" for host in self.hosts.values()]
        self.known_hosts.write_text("".join(lines))
        entries = [CLIENT_ENTRY.format(alias=host.alias, port=host.port, user=host.user,
                                       key=self.key, known_hosts=self.known_hosts)
                   for host in self.hosts.values()]
        self.ssh_config.write_text("# Written by tests/sshd.py: one alias per host.\n\n"
                                   + "\n".join(entries))

    def ssh_argv(self, host: Host | str, *command: str) -> list[str]:
        """``ssh -F <config> <alias> -- command...`` (remote words are joined by the shell)."""
        return ["ssh", "-F", str(self.ssh_config), self.host(host).alias, "--", *command]

    def ssh(self, host: Host | str, *command: str, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on a host with the OpenSSH client; never raises on exit status."""
        return subprocess.run(self.ssh_argv(host, *command), capture_output=True, text=True,
                              input=input, timeout=timeout, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def fabric_config(self) -> Any:
        """A ``fabric.Config`` reading only this fleet's client config, no agent, no ~/.ssh keys.

        ``run.in_stream`` is off: Invoke's runner otherwise reads the local stdin, which pytest's
        capture turns into an OSError in a thread (``ThreadException``).
        """
        import fabric

        return fabric.Config(
            runtime_ssh_path=str(self.ssh_config),
            overrides={"connect_kwargs": {"allow_agent": False, "look_for_keys": False},
                       "timeouts": {"connect": 5},
                       "run": {"in_stream": False}},
        )

    def connection(self, host: Host | str, *, strict: bool = True) -> Any:
        """A ``fabric.Connection`` to a host by its alias.

        Fabric ignores ``UserKnownHostsFile`` and ``StrictHostKeyChecking`` and accepts any host
        key; ``strict`` (the default) loads this fleet's known_hosts and rejects anything else.
        """
        import fabric
        import paramiko

        conn = fabric.Connection(self.host(host).alias, config=self.fabric_config())
        if strict:
            conn.client.load_host_keys(str(self.known_hosts))
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return conn

    # the server side

    def host(self, host: Host | str) -> Host:
        return self.hosts[host if isinstance(host, str) else host.alias]

    def is_running(self, host: Host | str) -> bool:
        proc = self._servers[self.host(host).alias].proc
        return proc is not None and proc.poll() is None

    def start(self, host: Host | str, timeout: float = 10) -> None:
        """Start a host's sshd and wait until its port answers with an SSH banner."""
        host = self.host(host)
        if self.is_running(host):
            return
        server = self._servers[host.alias]
        server.config.write_text(SSHD_CONFIG.format(
            port=host.port, host_key=self.host_key, pid_file=server.pid_file, user=host.user,
            log_level=self.log_level))
        _run(SSHD, "-t", "-f", str(server.config))
        argv = [SSHD, "-D", "-e", "-f", str(server.config)]
        if self.pdeathsig and shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        mark = server.log.stat().st_size if server.log.exists() else 0
        with open(server.log, "ab") as log:
            server.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if server.proc.poll() is not None:
                raise SSHDError(f"sshd for {host.alias} exited {server.proc.returncode} on "
                                f"port {host.port}:\n{self._log_since(server, mark)}")
            if self._banner(host.port):
                return
            if time.monotonic() > deadline:
                self._stop_server(server)
                raise SSHDError(f"sshd for {host.alias} did not answer on 127.0.0.1:"
                                f"{host.port} within {timeout:.0f}s:\n"
                                f"{self._log_since(server, mark)}")
            time.sleep(0.02)

    def stop(self, host: Host | str) -> None:
        """Take a host down: its sshd and every session under it (open connections drop)."""
        record = self.host(host)
        self._stop_server(self._servers[record.alias])
        # A session forked just before the scan of the listener's children can escape it
        # (seen under load): its user's processes go too, which closes its connection.
        _kill_uid(record.uid)

    def restart_stopped(self) -> None:
        """Start every host whose sshd is not running (a test that stopped one and failed)."""
        for alias in self.hosts:
            if not self.is_running(alias):
                self.start(alias)

    def log(self, host: Host | str) -> str:
        """What this host's sshd has logged (all runs)."""
        server = self._servers[self.host(host).alias]
        return server.log.read_text(errors="replace") if server.log.exists() else ""

    @staticmethod
    def _banner(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                return sock.recv(8).startswith(b"SSH-2.0")
        except OSError:
            return False

    @staticmethod
    def _log_since(server: _Server, mark: int) -> str:
        with open(server.log, "rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").strip() or "(sshd printed nothing)"

    @staticmethod
    def _stop_server(server: _Server) -> None:
        proc = server.proc
        if proc is None:
            return
        if proc.poll() is None:
            sessions = _descendants(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            _kill(sessions)
            _wait_gone(sessions)
        server.proc = None
        server.pid_file.unlink(missing_ok=True)


if __name__ == "__main__":  # a by-hand check: python3 tests/sshd.py
    with Fleet.create() as fleet:
        for name in ("h1", "h2"):
            fleet.add_host(name)
        for name in fleet.hosts:
            print(name, fleet.ssh(name, "id -un; echo $HOME").stdout.split(), file=sys.stderr)
