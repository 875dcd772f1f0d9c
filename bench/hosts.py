"""Many hosts, by hand (issue 15): a release of 200 scripts to 1, 2, 4 and 8 loopback hosts.

    sudo .venv/bin/python bench/hosts.py [--files 200] [--repeat 3] [--ansible /tmp/ansible-venv]

Needs root and openssh-server (it builds its hosts with ``tests/sshd.py``: one throwaway user
and one sshd per host on 127.0.0.1). Every timed run is a release that changes all the
scripts (the sources flip between two contents, so each file is backed up and replaced each
time), against, in the same run:

- the same release run locally (``invoke deploy.scripts``, one state dir and target);
- ``--hosts`` to N hosts, serial (``--parallel 1``) and parallel (``--parallel N``);
- Ansible's ``copy`` module with ``backup: yes`` over OpenSSH to the same hosts (``-f 1`` and
  ``-f N``), when an ansible-core venv is given (``python3 -m venv /tmp/ansible-venv &&
  /tmp/ansible-venv/bin/pip install ansible-core``; never committed).

It prints medians and same-run ratios: per host and per file, against local, and Ansible
against ``--hosts`` at the same parallelism. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import sshd  # noqa: E402 - the fixture's module, run from the checkout

CONFIG = """\
[tool.deploy]
state_dir = "~/.claude-pm"

[tool.deploy.scripts]
source = "bin"
target = "~/.local/bin"

[tool.deploy.framework]
template = "none/CLAUDE.md"
"""


def write_sources(root: Path, files: int, flip: int) -> None:
    for i in range(files):
        (root / "bin" / f"script-{i:03d}").write_text(
            f"#!/bin/sh\n# release {flip}\necho script {i}\n" + "# padding\n" * 100)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=3600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}...: exit {done.returncode}\n"
                           f"{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--ansible", default="/tmp/ansible-venv")
    parser.add_argument("--ansible-sizes", default="1,2",
                        help="host counts for Ansible (it takes about a second a file a host)")
    parser.add_argument("--ansible-repeat", type=int, default=1)
    parser.add_argument("--ansible-serial-max", type=int, default=2,
                        help="time Ansible's -f 1 only up to this many hosts (it is slow)")
    args = parser.parse_args()
    # A TERM (or an INT, which a background job ignores) tears the hosts down on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(n) for n in args.sizes.split(",")]
    ansible_sizes = [int(n) for n in args.ansible_sizes.split(",")]
    ansible = Path(args.ansible, "bin/ansible")
    scratch = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    home = scratch / "home"
    (home / ".ssh").mkdir(parents=True)
    proj = scratch / "proj"
    (proj / "bin").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(CONFIG)
    env = {**os.environ, "HOME": str(home), "DEPLOY_CONFIG": str(proj / "pyproject.toml")}
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]
    results: dict[str, list[float]] = {}
    flip = 0

    def release(key: str, argv: list[str], *, run_env: dict[str, str] = env) -> None:
        nonlocal flip
        flip += 1
        write_sources(proj, args.files, flip)
        results.setdefault(key, []).append(timed(argv, run_env, proj))

    with sshd.Fleet.create(log_level="ERROR") as fleet:
        names = [f"h{i}" for i in range(1, max(sizes) + 1)]
        for name in names:
            fleet.add_host(name)
        (home / ".ssh/config").write_text(fleet.ssh_config.read_text())
        inventory = scratch / "inventory"
        inventory.write_text("[all]\n" + "\n".join(names) + "\n")
        ansible_env = {**env, "ANSIBLE_SSH_ARGS": f"-F {fleet.ssh_config} -o ControlMaster=auto "
                       "-o ControlPersist=60s", "ANSIBLE_HOST_KEY_CHECKING": "True",
                       "ANSIBLE_PYTHON_INTERPRETER": fleet.python, "ANSIBLE_NOCOLOR": "1",
                       "ANSIBLE_LOCAL_TEMP": str(scratch / "ansible-tmp")}
        write_sources(proj, args.files, 0)
        # One warm-up of each kind, untimed: byte-compiled files, first connections.
        timed([*invoke, "deploy.scripts"], env, proj)
        timed([*invoke, "deploy.scripts", "--hosts", ",".join(names), "--parallel",
               str(len(names))], env, proj)
        for _ in range(args.repeat):
            release("local", [*invoke, "deploy.scripts"])
            for n in sizes:
                hosts = ",".join(names[:n])
                release(f"hosts{n}-serial", [*invoke, "deploy.scripts", "--hosts", hosts])
                if n > 1:
                    release(f"hosts{n}-parallel", [*invoke, "deploy.scripts", "--hosts", hosts,
                                                   "--parallel", str(n)])
        for _ in range(args.ansible_repeat if ansible.exists() else 0):
            for n in ansible_sizes:
                copy = [str(ansible), "-i", str(inventory), names[0] if n == 1 else
                        f"all[0:{n - 1}]", "-m", "copy", "-a",
                        f"src={proj}/bin/ dest=~/.local/ansible-bin/ mode=0755 backup=yes"]
                if n <= args.ansible_serial_max:
                    release(f"ansible{n}-serial", [*copy, "-f", "1"], run_env=ansible_env)
                if n > 1:
                    release(f"ansible{n}-parallel", [*copy, "-f", str(n)], run_env=ansible_env)
    shutil.rmtree(scratch, ignore_errors=True)

    med = {key: statistics.median(v) for key, v in results.items()}
    local = med["local"]
    print(f"{args.files} scripts, every one changed per release; median of {args.repeat}; "
          f"local release {local:.2f} s ({local / args.files * 1000:.1f} ms/file)")
    print(f"{'run':<20} {'total s':>8} {'per host s':>11} {'ms/file':>8} {'x local':>8} "
          f"{'x local/host':>13} {'ansible x ours':>15}")
    for key in sorted(med, key=lambda k: (k != "local", k.lstrip("ahnsiblet").zfill(12), k)):
        n = 1 if key == "local" else int("".join(ch for ch in key.split("-")[0] if ch.isdigit()))
        total = med[key]
        ours = med.get(key.replace("ansible", "hosts"))
        vs = f"{total / ours:.2f}" if key.startswith("ansible") and ours else ""
        print(f"{key:<20} {total:>8.2f} {total / n:>11.2f} {total / (n * args.files) * 1000:>8.1f} "
              f"{total / local:>8.2f} {total / n / local:>13.2f} {vs:>15}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
