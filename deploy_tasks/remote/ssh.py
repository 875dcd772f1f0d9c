"""One command on one host over Fabric: connect, probe, ship, run, collect, clean up.

Every host gets the same two files in a private temporary folder (``mktemp -d``, 0700): the
zipapp of the host side (``pyz``) and the bundle of config and sources (``deploy.bundle``).
The zipapp is checked against its sha256 on the host before it runs; it checks the bundle
itself. A host that has the zipapp in its cache under the same sha256 copies it from there
instead of receiving it (``REUSE``, ``KEEP``). The folder is removed after the run, also
when the run failed; only a connection lost on the way leaves it, and the next command on
that host removes it once it is a day old.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

import fabric
import paramiko

from deploy_tasks.remote.pyz import Shipped

log = logging.getLogger("deploy")

MIN_PYTHON = (3, 11)
# On the host: python3 there and its version, then a private folder for this run's files.
# First, this user's folders of earlier runs whose connection was lost (nothing removed
# them) go once a day old: no run lasts that long, and find neither follows a link nor
# touches another user's folder. A find that cannot do it changes nothing else.
PROBE = ('command -v python3 >/dev/null 2>&1 || { echo "no python3 on its PATH" >&2; exit 127; }; '
         'find "${TMPDIR:-/tmp}" -maxdepth 1 -type d -name "claude-pm-deploy.*" -user "$(id -u)" '
         "-mmin +1440 -exec rm -rf -- {} + 2>/dev/null; "
         "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' && "
         'mktemp -d "${TMPDIR:-/tmp}/claude-pm-deploy.XXXXXXXX"')
# The zipapp is run only once the host itself has hashed the bytes it received.
CHECK = ("import hashlib, sys; d = hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest(); "
         "sys.exit(None if d == sys.argv[2] else 'error: %s: sha256 %s, expected %s; not run' "
         "% (sys.argv[1], d, sys.argv[2]))")
# The host's cache of the host side: the zipapp under its sha256 in the host user's
# ``~/.cache``. A cached copy is used only once the host has hashed it (CHECK), so a stale or
# altered one is sent again, never run; an entry unused for 30 days goes.
HOST_CACHE = '"${{XDG_CACHE_HOME:-$HOME/.cache}}/claude-pm-deploy"'  # in str.format()s
REUSE = ("c=" + HOST_CACHE + "/host-{sha}.pyz; "
         '[ -f "$c" ] && [ ! -L "$c" ] && cp -- "$c" {tmp}/host.pyz && '
         "python3 -c {check} {tmp}/host.pyz {sha} >/dev/null 2>&1 && "
         '{{ touch -c -- "$c" 2>/dev/null; echo reused; }} || '
         "rm -f -- {tmp}/host.pyz; true")
# After the check passed, and never failing the command chain it sits in (`... && KEEP env`).
KEEP = ("{{ d=" + HOST_CACHE + "; mkdir -p -m 700 \"$d\" && "
        'cp host.pyz "$d/.host-{sha}.$$" && mv -f "$d/.host-{sha}.$$" "$d/host-{sha}.pyz"; '
        'find "$d" -maxdepth 1 -name "host-*.pyz" -mtime +30 -delete; true; }} '
        ">/dev/null 2>&1 && ")
# Passed through to the host side when set here (the test hook is set only by tests).
PASSED_ENV = ("DEPLOY_LOG", "DEPLOY_DEBUG", "DEPLOY_TEST_HOST_PAUSE", "GITHUB_ACTOR")


@dataclass
class Outcome:
    """What one host did: its exit code and output, or why the controller has no answer."""

    host: str
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    run: int | None = None          # the run the host recorded (its result file)
    error: str | None = None        # the controller's own error line for this host
    lost: bool = False              # the connection dropped while the host side ran
    summary: str = ""               # its GitHub Actions step summary, when there is one
    outputs: str = ""               # and the step outputs it wrote (actions.outputs' form)
    extra: dict[str, Any] = field(default_factory=dict)


def host_name(target: str | fabric.Connection) -> str:
    return target if isinstance(target, str) else str(target.original_host)


def connect(target: str | fabric.Connection) -> fabric.Connection:
    """A Connection (it reads ``~/.ssh/config``) that checks host keys: Fabric accepts any
    key by default, so the ``known_hosts`` files (the config's ``UserKnownHostsFile``, else
    ``~/.ssh/known_hosts``, and ``/etc/ssh/ssh_known_hosts``) are loaded and an unknown
    key is refused."""
    if isinstance(target, str):
        config = fabric.Config(overrides={"run": {"in_stream": False},
                                          "timeouts": {"connect": 10}})
        conn = fabric.Connection(target, config=config)
    else:
        conn = target
    files = conn.ssh_config.get("userknownhostsfile") or "~/.ssh/known_hosts"
    listed = files.split() if isinstance(files, str) else list(files)
    for path in [*listed, "/etc/ssh/ssh_known_hosts"]:
        full = os.path.expanduser(path)
        if os.path.isfile(full):
            conn.client.load_host_keys(full)
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def probed(name: str, stdout: str) -> tuple[str | None, str | None]:
    """The temporary folder the probe made, and why the host cannot run the host side (its
    ``python3`` older than 3.11, or an answer that is not the probe's), or None."""
    words = stdout.split()  # a login that prints a banner first: the probe's words are last
    if len(words) < 2 or not words[-1].startswith("/"):
        return None, f"host {name}: the probe's answer was not a Python version and a folder"
    version, tmp = words[-2:]
    try:
        found = tuple(int(p) for p in version.split("."))
    except ValueError:
        return tmp, f"host {name}: python3 said its version is {version!r}"
    if found < MIN_PYTHON:
        return tmp, (f"host {name}: python3 is {version}; the host side needs Python >= "
                     f"{'.'.join(map(str, MIN_PYTHON))}")
    return tmp, None


def _reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, paramiko.SSHException) and "known_hosts" in text:
        text += " (add its key to ~/.ssh/known_hosts, e.g. from ssh-keyscan, checked)"
    return text


def _run(conn: fabric.Connection, command: str) -> Any:
    return conn.run(command, hide=True, warn=True, in_stream=False)


def run_host(target: str | fabric.Connection, argv: list[str], *, pyz: Shipped, bundle: Shipped,
             project: str, origin: str, check_command: str, cache: bool = True) -> Outcome:
    """Run ``argv`` (a task and its flags) through the host side on one host; ``cache``:
    keep the zipapp in the host's cache when it had to be sent (a dry run leaves the host
    as it was)."""
    name = host_name(target)
    out = Outcome(name)
    try:
        conn = connect(target)
        conn.open()
    except Exception as err:
        out.code, out.error = 1, f"host {name}: cannot connect: {_reason(err)}"
        return out
    tmp: str | None = None
    started = False
    try:
        probe = _run(conn, PROBE)
        if probe.exited != 0:
            out.code = 1
            out.error = f"host {name}: {probe.stderr.strip() or 'probe failed'}"
            return out
        tmp, problem = probed(name, probe.stdout)
        if problem is not None or tmp is None:
            out.code, out.error = 1, problem or f"host {name}: the probe made no folder"
            return out
        folder = shlex.quote(tmp)
        # A login that prints a banner first: the answer is the last word.
        reused = _run(conn, REUSE.format(tmp=folder, sha=pyz.sha256, check=shlex.quote(CHECK))
                      ).stdout.split()[-1:] == ["reused"]
        if reused:
            log.debug("host %s: the host side %s is in its cache; not sent", name,
                      pyz.sha256[:12])
        else:
            conn.put(str(pyz.path), f"{tmp}/host.pyz")
        conn.put(str(bundle.path), f"{tmp}/bundle.zip")
        env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
        env |= {"PYTHONIOENCODING": "utf-8", "DEPLOY_HOST_NAME": name,
                "DEPLOY_CONTROLLER_COMMAND": check_command}
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # The host writes its summary and its outputs into the run's folder; the
            # controller appends the one and folds the others into its own.
            env["GITHUB_ACTIONS"] = "true"
            for variable, file in (("GITHUB_STEP_SUMMARY", "summary.md"),
                                   ("GITHUB_OUTPUT", "output.txt")):
                if os.environ.get(variable):
                    env[variable] = f"{tmp}/{file}"
        words = ["python3", "host.pyz", "bundle.zip", bundle.sha256, project, origin, "--",
                 *argv]
        keep = KEEP.format(sha=pyz.sha256) if cache and not reused else ""
        command = (f"cd {folder} && python3 -c {shlex.quote(CHECK)} host.pyz "
                   f"{pyz.sha256} && {keep}env "
                   + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " "
                   + " ".join(shlex.quote(w) for w in words))
        started = True
        done = _run(conn, command)
        if done.exited < 0 or not conn.is_connected:
            raise EOFError("the connection closed before the host side exited")
        out.code, out.stdout, out.stderr = done.exited, done.stdout, done.stderr
        after = _run(conn, f"cat {folder}/result.json 2>/dev/null; printf '\\000'; "
                           f"cat {folder}/summary.md 2>/dev/null; printf '\\000'; "
                           f"cat {folder}/output.txt 2>/dev/null; true")
        result, _nul, rest = after.stdout.partition("\0")
        out.summary, _nul, out.outputs = rest.partition("\0")
        if result.strip():
            import json

            out.run = json.loads(result).get("run")
    except Exception as err:
        out.code = 1
        if started:
            out.lost = True
            out.error = (f"host {name}: connection lost during the run ({_reason(err)}); its "
                         f"state is unknown: check it with `{check_command} history --hosts "
                         f"{name}`; its next writing run records a killed run as interrupted")
        else:
            out.error = f"host {name}: lost before anything ran ({_reason(err)}); nothing changed"
    finally:
        if tmp is not None and conn.is_connected:
            try:
                _run(conn, f"rm -rf -- {shlex.quote(tmp)}")
            except Exception:
                pass
        conn.close()
    return out
