"""The workloads behind the rows: each sets up its scratch data, then ``cycle`` runs one pair.

A cycle times the toolkit and its baseline alternately and records each pair in the
rows it was asked for; untimed steps (new generations of sources) come before each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from harness import (
    MIB,
    REPO,
    Project,
    Row,
    Scratch,
    measure,
    profile_name,
    record,
    script_bytes,
    write_files,
)

SCRIPTS_CONFIG = """\
[tool.deploy]
state_dir = "state"

[tool.deploy.scripts]
source = "bin"
target = "out/bin"
"""


class ScriptsCase:
    """Rows 1-3: a deploy of N changed scripts, the same deploy unchanged, its rollback."""

    def __init__(self, scratch: Scratch, count: int, size: int) -> None:
        self.scratch = scratch
        self.count, self.size = count, size
        self.project = Project(scratch, "scripts", SCRIPTS_CONFIG)
        self.floor = scratch.root / "scripts-floor"
        self.issue2 = scratch.root / "scripts-issue2"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy.scripts")
        for where in (self.floor, self.issue2):
            shutil.copytree(where / "src", where / "tgt")

    def _generation(self, gen: int) -> None:
        files = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, self.size)
                 for i in range(self.count)}
        for folder in (self.project.root / "bin", self.floor / "src", self.issue2 / "src"):
            write_files(folder, files)

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        scratch, floor, gen = self.scratch, self.floor, self.gen
        scratch.profile_next = profile_name(rows.get("1"))
        t1 = self.project.cli("deploy.scripts")
        f1 = scratch.run_floor(floor / "src", floor / "tgt", floor / f"bak{gen}")
        record(rows, "1", t1, lambda: f1)
        record(rows, "1b", t1, lambda: scratch.run_issue2(
            self.issue2 / "src", self.issue2 / "tgt", self.issue2 / f"bak{gen}"))
        scratch.profile_next = profile_name(rows.get("2"))
        if "2" in rows:
            record(rows, "2", self.project.cli("deploy.scripts"), scratch.list_one_task)
        if "2i" in rows:
            record(rows, "2i", scratch.installed_cli(self.project.config, self.project.home,
                                                     "deploy.scripts"), scratch.list_one_task)
        scratch.profile_next = profile_name(rows.get("3"))
        t3 = self.project.cli("rollback.scripts")
        f3 = scratch.run_floor(floor / f"bak{gen}", floor / "tgt", floor / f"rb{gen}")
        record(rows, "3", t3, lambda: f3)


VERSION_NAMES = ("AGENTS", "CLI", "DOCUMENTATION", "FRAMEWORK", "HEALTH", "INTEGRATION",
                 "MEMORY", "SERVICES", "TICKETING")
TEMPLATE_FILLER = "".join(f"# filler line {i:03d}: keeps the rendered file near 2 KiB\n"
                          for i in range(32))


class ReleaseCase:
    """Row 4: ``invoke deploy`` over scripts, templates and version files; unchanged; undone."""

    def __init__(self, scratch: Scratch, scripts: int, templates: int) -> None:
        self.scratch = scratch
        self.scripts, self.templates = scripts, templates
        lines = [SCRIPTS_CONFIG, '[tool.deploy.versions]\ndir = "versions"\n',
                 '[tool.deploy.framework]\ntemplate = "tpl/framework/CLAUDE.md"\n'
                 'install_to = "out/framework/CLAUDE.md"\nparents = []\n',
                 '[tool.deploy.context]\nproject_name = "bench"\n']
        for i in range(templates):
            lines.append(f'[[tool.deploy.templates]]\nid = "t{i:03d}"\n'
                         f'source = "tpl/t{i:03d}.j2"\ntarget = "out/etc/t{i:03d}.conf"\n')
        self.project = Project(scratch, "release", "\n".join(lines))
        root = self.project.root
        write_files(root / "tpl" / "framework",
                    {"CLAUDE.md": "# Framework {{ framework_version }}\n"}, 0o644)
        write_files(root / "tpl", {
            f"t{i:03d}.j2": f"# {{{{ project_name }}}} template {i:03d}\n"
                            "{% for name, v in versions|dictsort %}{{ name }} = {{ v }}\n"
                            "{% endfor %}" + TEMPLATE_FILLER for i in range(templates)}, 0o644)
        self.floor = scratch.root / "release-floor"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy")
        shutil.copytree(self.floor / "src", self.floor / "tgt")

    def _generation(self, gen: int) -> None:
        root = self.project.root
        scripts = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, 4096)
                   for i in range(self.scripts)}
        write_files(root / "bin", scripts)
        versions = {f"{n}_VERSION": f"{gen + 1:03d}\n".encode() for n in VERSION_NAMES}
        write_files(root / "versions", {**versions, "VERSION": f"0.{gen + 1}.0\n".encode()},
                    0o644)
        body = "".join(f"{n.lower()} = {gen + 1:03d}\n" for n in sorted(VERSION_NAMES))
        rendered = {f"t{i:03d}.conf": (f"# bench template {i:03d}\n" + body
                                       + TEMPLATE_FILLER).encode()
                    for i in range(self.templates)}
        write_files(self.floor / "src", {**scripts, **rendered, **versions})

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        scratch = self.scratch
        floor, gen = self.floor, self.gen
        scratch.profile_next = profile_name(rows.get("4"))
        t4 = self.project.cli("deploy")
        f4 = scratch.run_floor(floor / "src", floor / "tgt", floor / f"bak{gen}")
        record(rows, "4", t4, lambda: f4)
        scratch.profile_next = profile_name(rows.get("4b"))
        if "4b" in rows:
            record(rows, "4b", self.project.cli("deploy"), scratch.list_one_task)
        scratch.profile_next = profile_name(rows.get("4c"))
        t4c = self.project.cli("rollback.release")
        f4c = scratch.run_floor(floor / f"bak{gen}", floor / "tgt", floor / f"rb{gen}")
        record(rows, "4c", t4c, lambda: f4c)


class VersionsCase:
    """Row 9: ``versions.bulk`` setting all 9 version files in one run, against the floor."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.project = Project(scratch, "versions",
                               SCRIPTS_CONFIG + '\n[tool.deploy.versions]\ndir = "versions"\n')
        write_files(self.project.root / "bin", {})
        self.floor = scratch.root / "versions-floor"
        self.gen = 1
        files = self._files()
        write_files(self.project.root / "versions", files, 0o644)
        write_files(self.floor / "tgt", files, 0o644)

    def _files(self) -> dict[str, bytes]:
        return {f"{n}_VERSION": f"{self.gen:03d}\n".encode() for n in VERSION_NAMES}

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        write_files(self.floor / "src", self._files(), 0o644)
        sets = [arg for n in VERSION_NAMES for arg in ("--set", f"{n.lower()}={self.gen:03d}")]
        self.scratch.profile_next = profile_name(rows.get("9"))
        record(rows, "9", self.project.cli("versions.bulk", *sets),
               lambda: self.scratch.run_floor(self.floor / "src", self.floor / "tgt",
                                              self.floor / f"bak{self.gen}"))


class BigIndexCase:
    """Row 5: read-only tasks over an index that already holds N backups.

    The index is filled directly (the schema comes from ``deploy.index``): N/100 deploy
    runs of the same 100 scripts, each backing up what the run before wrote. The backup
    files are hardlinks (one inode per run), so building 100,000 costs seconds.
    """

    SCRIPTS = 100

    def __init__(self, scratch: Scratch, backups: int) -> None:
        sys.path.insert(0, str(REPO))
        from deploy.store.index import CHANGE_COLS, Index

        self.scratch = scratch
        self.project = Project(scratch, "big-index", SCRIPTS_CONFIG)
        root = self.project.root
        tree = root / "state" / "backups"
        for folder in ("framework", "scripts", "versions", "templates",
                       "parent_directory_manager"):
            (tree / folder).mkdir(parents=True, exist_ok=True)
        runs = max(backups // self.SCRIPTS, 1)
        names = [f"s{j:03d}" for j in range(self.SCRIPTS)]
        target_dir = root / "out" / "bin"

        def content(k: int) -> bytes:
            return f"#!/bin/sh\necho version {k}\n".encode()

        Index(tree / "index.sqlite").close()
        start = datetime.now() - timedelta(minutes=runs + 5)
        run_rows, change_rows = [], []
        cols = CHANGE_COLS.split(", ")
        for k in range(1, runs + 1):
            when = start + timedelta(minutes=k)
            iso = when.astimezone().isoformat(timespec="milliseconds")
            stamp = when.strftime("%Y%m%d_%H%M%S")
            old, new = content(k - 1), content(k)
            old_sha, new_sha = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
            run_rows.append((k, "deploy", "bench", "invoke deploy.scripts", 1, iso, iso, "done",
                             None, "scripts"))
            first = tree / "scripts" / f"{names[0]}_backup_{stamp}"
            first.write_bytes(old)
            first.chmod(0o755)
            for j, name in enumerate(names):
                backup = f"scripts/{name}_backup_{stamp}"
                if j:
                    os.link(first, tree / backup)
                values = {"seq": (k - 1) * self.SCRIPTS + j + 1, "run": k,
                          "category": "scripts", "key": name,
                          "target": str(target_dir / name), "action": "update",
                          "backup": backup, "old_sha256": old_sha, "old_size": len(old),
                          "old_mode": 0o755, "new_sha256": new_sha, "new_size": len(new),
                          "new_mode": 0o755, "created": iso, "created_ts": when.timestamp(),
                          "state": "applied", "undone_by": None, "reverts": None, "pruned": 0}
                change_rows.append(tuple(values.get(c) for c in cols))
        import sqlite3

        db = sqlite3.connect(tree / "index.sqlite")
        with db:
            db.executemany("INSERT INTO runs (id, kind, actor, command, pid, started, finished,"
                           " state, undoes, categories) VALUES (?,?,?,?,?,?,?,?,?,?)", run_rows)
            db.executemany(f"INSERT INTO changes ({CHANGE_COLS}) VALUES "
                           f"({', '.join('?' for _ in cols)})", change_rows)
        db.close()
        (tree / "lock").touch()
        latest = {n: content(runs) for n in names}
        write_files(target_dir, latest)
        write_files(root / "bin", latest)
        self.count = len(change_rows)

    def cycle(self, rows: dict[str, Row]) -> None:
        commands = {"5a": ("backups.status", "--json"),
                    "5b": ("rollback.scripts", "--name", "s000", "--dry-run"),
                    "5c": ("history", "--json", "--limit", "50", "--page", "2")}
        for key, args in commands.items():
            if key in rows:
                self.scratch.profile_next = profile_name(rows[key])
                record(rows, key, self.project.cli(*args), self.scratch.list_one_task)


def in_turns(gen: int, toolkit: Callable[[], None], baseline: Callable[[], None]) -> None:
    """One pair: the toolkit first on odd generations, the baseline first on even ones."""
    first, second = (toolkit, baseline) if gen % 2 else (baseline, toolkit)
    first()
    second()


class BigFileCase:
    """Row 6: one huge script deployed with its backup, against ``cp`` aside and over."""

    def __init__(self, scratch: Scratch, size: int) -> None:
        self.scratch = scratch
        self.project = Project(scratch, "big-file", SCRIPTS_CONFIG)
        self.base = scratch.root / "big-file-cp"
        src = self.project.root / "bin" / "big"
        src.parent.mkdir(parents=True, exist_ok=True)
        block = os.urandom(MIB)
        with open(src, "wb") as handle:
            for i in range(size // MIB):
                handle.write(i.to_bytes(8, "little") + block[8:])
        src.chmod(0o755)
        self.project.cli("deploy.scripts")
        (self.base / "bak").mkdir(parents=True)
        shutil.copy(src, self.base / "src")
        shutil.copy(src, self.base / "tgt")
        self.gen = 0

    @staticmethod
    def _touch(path: Path, gen: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, f"gen {gen:08d}".encode(), 0)
        finally:
            os.close(fd)

    def cycle(self, rows: dict[str, Row]) -> None:
        """One pair, in turns: the toolkit first on odd pairs, ``cp`` first on even ones.

        Which one goes first matters here more than anywhere: on a VM whose balloon hands
        free pages back to the host, new page cache is cheap only in pages freed a moment
        before, and each side frees a GiB (the replaced target) for whichever runs next.
        """
        self.gen += 1
        self._touch(self.project.root / "bin" / "big", self.gen)
        self._touch(self.base / "src", self.gen)
        in_turns(self.gen, lambda: self._toolkit(rows), lambda: self._baseline(rows))

    def _toolkit(self, rows: dict[str, Row]) -> None:
        self.scratch.profile_next = profile_name(rows.get("6"))
        rows["6"].toolkit.append(self.project.cli("deploy.scripts"))

    def _baseline(self, rows: dict[str, Row]) -> None:
        for old in (self.base / "bak").iterdir():
            old.unlink()  # only the newest aside copy is kept: the disk is not the point
        src, tgt, bak = self.base / "src", self.base / "tgt", self.base / "bak" / f"{self.gen}"
        rows["6"].baseline.append(measure(
            ["sh", "-c", 'cp -- "$1" "$2" && cp -- "$3" "$1"', "cp2", str(tgt), str(bak),
             str(src)], logs=self.scratch.logs))


class BigZstdCase:
    """Row 6z: one huge script's rollback from a compressed backup (``--to``), which backs
    the current file up and decompresses the old one as it writes it, against ``cp`` aside
    and ``zstd -d`` over. The backup's run is kept (``history.keep``) so each cycle's prune,
    which compresses the backups the cycle made and drops those beyond the count, leaves it."""

    CONFIG = SCRIPTS_CONFIG + ("\n[tool.deploy.backup]\ncompression_enabled = true\n"
                               "compress_after_days = 0\nmax_backups_per_type = 2\n")

    def __init__(self, scratch: Scratch, size: int) -> None:
        import json

        if shutil.which("zstd") is None:
            raise RuntimeError("zstd is not installed (apt-get install zstd)")
        self.scratch = scratch
        self.project = Project(scratch, "big-zst", self.CONFIG)
        self.base = scratch.root / "big-zst-cp"
        self.src = self.project.root / "bin" / "big"
        self.src.parent.mkdir(parents=True, exist_ok=True)
        block = os.urandom(MIB)
        with open(self.src, "wb") as handle:
            for i in range(size // MIB):
                handle.write(i.to_bytes(8, "little") + block[8:])
        self.src.chmod(0o755)
        for gen in range(1, 4):  # v1 deployed, then backed up by v2, v2 by v3
            if gen > 1:
                BigFileCase._touch(self.src, gen)
            self.project.cli("deploy.scripts")
        self.project.cli("backups.prune")
        self.project.cli("backups.list", "--json")
        listed = json.loads((scratch.logs / "last.out").read_text())["backups"]
        oldest = min(listed, key=lambda b: int(b["id"]))
        if not str(oldest["path"]).endswith(".zst"):
            raise RuntimeError(f"backup {oldest['id']} was not compressed: {oldest['path']}")
        self.backup_id = str(oldest["id"])
        self.project.cli("history.keep", "--run", str(oldest["run"]))
        (self.base / "bak").mkdir(parents=True)
        shutil.copy(oldest["path"], self.base / "old.zst")
        shutil.copy(self.src, self.base / "tgt")
        self.gen = 3

    def cycle(self, rows: dict[str, Row]) -> None:
        """One pair, in turns (see BigFileCase.cycle); the deploy back to the source and
        the prune that follow the toolkit's rollback are not timed."""
        self.gen += 1
        in_turns(self.gen, lambda: self._toolkit(rows), lambda: self._baseline(rows))

    def _toolkit(self, rows: dict[str, Row]) -> None:
        self.scratch.profile_next = profile_name(rows.get("6z"))
        rows["6z"].toolkit.append(self.project.cli("rollback.scripts", "--to", self.backup_id))
        BigFileCase._touch(self.src, self.gen)
        self.project.cli("deploy.scripts")
        self.project.cli("backups.prune")

    def _baseline(self, rows: dict[str, Row]) -> None:
        for old in (self.base / "bak").iterdir():
            old.unlink()
        tgt, bak = self.base / "tgt", self.base / "bak" / f"{self.gen}"
        rows["6z"].baseline.append(measure(
            ["sh", "-c", 'cp -- "$1" "$2" && zstd -q -d -f -o "$1" -- "$3"', "cpzstd",
             str(tgt), str(bak), str(self.base / "old.zst")], logs=self.scratch.logs))


class ListCase:
    """Row 7: listing the project's tasks against listing a one-task ``tasks.py``."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch

    def cycle(self, rows: dict[str, Row]) -> None:
        self.scratch.profile_next = profile_name(rows.get("7"))
        if "7" in rows:
            rows["7"].toolkit.append(self.scratch.list_project())
            rows["7"].baseline.append(self.scratch.list_one_task())
        if "7i" in rows:
            scratch = self.scratch
            rows["7i"].toolkit.append(scratch.installed_cli(scratch.root / "none.toml",
                                                            scratch.root, "--list"))
            rows["7i"].baseline.append(scratch.list_one_task())


ANSIBLE_PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: copy each script with a backup
      ansible.builtin.copy:
        src: "{{{{ item }}}}"
        dest: "{tgt}/"
        mode: "0755"
        backup: true
      with_fileglob: "{src}/*"
"""


class AnsibleCase:
    """Row 8 (optional): ``deploy.scripts`` of 100 changed files against Ansible ``copy``."""

    def __init__(self, scratch: Scratch, count: int) -> None:
        self.scratch = scratch
        self.count = count
        self.project = Project(scratch, "ansible-tk", SCRIPTS_CONFIG)
        self.base = scratch.root / "ansible"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy.scripts")
        shutil.copytree(self.base / "src", self.base / "tgt")
        self.play = self.base / "play.yml"
        self.play.write_text(ANSIBLE_PLAY.format(src=self.base / "src", tgt=self.base / "tgt"))

    def _generation(self, gen: int) -> None:
        files = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, 4096) for i in range(self.count)}
        write_files(self.project.root / "bin", files)
        write_files(self.base / "src", files)

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        rows["8"].toolkit.append(self.project.cli("deploy.scripts"))
        env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false",
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
        # Run the copy module with ansible's own Python (a venv's, say), not whichever
        # python3 interpreter discovery finds first on PATH.
        playbook = shutil.which("ansible-playbook")
        own = Path(playbook).parent / "python3" if playbook else None
        if own is not None and own.exists():
            env.setdefault("ANSIBLE_PYTHON_INTERPRETER", str(own))
        rows["8"].baseline.append(measure(
            ["ansible-playbook", "-i", "localhost,", str(self.play)], env=env,
            logs=self.scratch.logs))
