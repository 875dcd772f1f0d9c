"""Many hosts without a network (issue 15): names and groups, the exit-code rule, the bundle,
the shipped zipapp run by a bare Python, and the flags every tree task gets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy import bundle, hosts
from deploy.config import load
from deploy.errors import ConfigError, IntegrityError
from tests.conftest import BASE_CONFIG, REPO, Project, assert_one_error_line
from tests.test_flags import every_task

BARE_PYTHON = "/usr/bin/python3"  # Debian's: no jinja2, no invoke, like a fresh host


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param("h1", ("h1",), id="one"),
    pytest.param("h1,h2,h1", ("h1", "h2"), id="duplicate-dropped"),
    pytest.param("prod, h3", ("web1", "deploy@web2:2222", "h3"), id="group-expanded"),
    pytest.param("h3,prod,web1", ("h3", "web1", "deploy@web2:2222"), id="first-order-kept"),
])
def test_expand_names_and_groups(spec: str, expected: tuple[str, ...]) -> None:
    """Groups become their members, in order, each host once."""
    groups = {"prod": ("web1", "deploy@web2:2222")}

    assert hosts.expand(spec, groups) == expected


@pytest.mark.parametrize("spec", [
    pytest.param("", id="empty"), pytest.param(",", id="only-commas"),
    pytest.param("-oProxyCommand=x", id="option-like"), pytest.param("a b", id="space"),
    pytest.param("a\nb", id="newline"),
])
def test_expand_refuses_bad_names(spec: str) -> None:
    """No host, an ssh option in disguise, a space or control character: exit 2."""
    with pytest.raises(ConfigError) as caught:
        hosts.expand(spec, {})

    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("codes", "expected"), [
    pytest.param([0, 0], 0, id="all-done"),
    pytest.param([0, 4, 3], 3, id="blocked-over-locked"),
    pytest.param([2, 3, 4], 2, id="bad-input-over-blocked"),
    pytest.param([130, 2], 130, id="interrupted-over-bad-input"),
    pytest.param([3, 1, 130], 1, id="failed-wins"),
    pytest.param([3, 127], 1, id="unknown-code-is-a-failure"),
])
def test_worst_exit_code(codes: list[int], expected: int) -> None:
    """The command exits with the most severe host's code (README, "Many hosts")."""
    assert hosts.worst(codes) == expected


def test_config_reads_host_groups(project: Project) -> None:
    """``[tool.deploy.hosts]`` groups are read as tuples of ssh names."""
    project.configure('[tool.deploy.hosts]\nproduction = ["web1", "deploy@web2:2222"]\n')

    assert load(project.config_path).hosts == {"production": ("web1", "deploy@web2:2222")}


@pytest.mark.parametrize(("table", "needle"), [
    pytest.param('production = "web1"', "tool.deploy.hosts.production must be a non-empty list",
                 id="not-a-list"),
    pytest.param("production = []", "non-empty list", id="empty"),
    pytest.param("production = [1]", "tool.deploy.hosts.production[0] must be a string",
                 id="not-a-string"),
    pytest.param('"bad group" = ["h1"]', "group name 'bad group'", id="bad-group"),
    pytest.param('p = ["-oProxyCommand=evil"]', "starts with '-'", id="option-like"),
])
def test_config_refuses_bad_groups(project: Project, table: str, needle: str) -> None:
    """A bad group is exit 2 naming the key, before anything connects."""
    project.configure(f"[tool.deploy.hosts]\n{table}\n")

    done = project.invoke("history", "--hosts", "p")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, needle)


def test_every_tree_task_takes_hosts_and_writing_ones_all_or_none() -> None:
    """``--hosts`` and ``--parallel`` on every task that reads or writes a tree (not the
    version files and legacy locations, which live in the checkout); ``--all-or-none`` on
    those that write."""
    with_hosts = {}
    for name, task in every_task():
        flags = {a.name for a in task.get_arguments()}
        if "hosts" in flags:
            with_hosts[name] = "all_or_none" in flags
            assert "parallel" in flags
            assert with_hosts[name] == ("dry_run" in flags)

    assert set(with_hosts) == {
        "deploy.all", "deploy.scripts", "deploy.framework", "deploy.templates",
        "scripts.status", "templates.status", "templates.history", "templates.adopt",
        "rollback.scripts", "rollback.release", "rollback.templates", "rollback.framework",
        "rollback.parents", "history.show", "history.keep", "backups.status", "backups.list",
        "backups.create", "backups.verify", "backups.reindex", "backups.prune"}


def test_parallel_is_checked(project: Project) -> None:
    """``--parallel 0`` is exit 2 naming the flag, before any host is reached."""
    done = project.invoke("history", "--hosts", "h1", "--parallel", "0")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "--parallel 0")


def test_bundle_round_trip_and_tamper(project: Project, tmp_path: Path) -> None:
    """The bundle carries the config and the sources byte for byte; one flipped byte, or a
    bundle cut short, is refused as a whole before anything is written."""
    project.write({"bin/a": b"#!/bin/sh\n\xff\x00\r\n", "versions/MEMORY_VERSION": "003\n",
                   "tpl/CLAUDE.md": "# {{ versions }}\n", "versions/README": "not sent\n"})
    cfg = load(project.config_path)
    out = tmp_path / "b.zip"
    digest = bundle.build(cfg, out)

    config = bundle.extract(out, digest, tmp_path / "got")

    assert config.read_bytes() == project.config_path.read_bytes()
    for rel in ("bin/a", "versions/MEMORY_VERSION", "tpl/CLAUDE.md"):
        assert (tmp_path / "got" / rel).read_bytes() == (project.root / rel).read_bytes()
    assert not (tmp_path / "got/versions/README").exists()
    data = bytearray(out.read_bytes())
    data[100] ^= 1
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="not received whole"):
        bundle.extract(bad, digest, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_bundle_member_that_does_not_match_its_manifest_is_refused(project: Project,
                                                                   tmp_path: Path) -> None:
    """A bundle whose file differs from the manifest's sha256 (built wrong, or altered with
    the outer hash recomputed) is refused, nothing unpacked."""
    project.write({"bin/a": "one\n"})
    out = tmp_path / "b.zip"
    bundle.build(load(project.config_path), out)
    with zipfile.ZipFile(out) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["bin/a"] = b"two\n"
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)

    with pytest.raises(IntegrityError, match="bin/a does not match its sha256"):
        bundle.extract(forged, bundle.sha256_file(forged), tmp_path / "got")
    assert not (tmp_path / "got").exists()


def test_a_source_outside_the_config_folder_is_refused(project: Project, tmp_path: Path) -> None:
    """With ``--hosts`` every source is sent under its path relative to the config's folder."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "s").write_text("x\n")
    project.configure(base=BASE_CONFIG.replace('source = "bin"', f'source = "{outside}"'))

    with pytest.raises(ConfigError, match="outside the config's folder"):
        bundle.build(load(project.config_path), tmp_path / "b.zip")


def on_host_config(text: str, extra: str = "") -> str:
    """``text`` (a base config) with the state dir and targets under ``~``, as a host needs."""
    return (text.replace('state_dir = "state"', 'state_dir = "~/host-state"')
            .replace('target = "target/bin"', 'target = "~/host-bin"')
            .replace('"target/framework/CLAUDE.md"', '"~/host-framework/CLAUDE.md"') + extra)


class HostRun:
    """A run folder (0700) as the controller leaves it on a host: the zipapp and the
    project's bundle; :meth:`run` runs the host side there under Debian's bare Python."""

    def __init__(self, project: Project, tmp_path: Path) -> None:
        if not os.access(BARE_PYTHON, os.X_OK):
            pytest.skip(f"no {BARE_PYTHON}")
        from deploy_tasks.remote import pyz

        self.project = project
        self.work = tmp_path / "run"
        self.work.mkdir(mode=0o700)
        self.shipped = pyz.build()
        (self.work / "host.pyz").write_bytes(self.shipped.path.read_bytes())
        self.digest = bundle.build(load(project.config_path), self.work / "bundle.zip")
        self.home = tmp_path / "hosthome"
        self.home.mkdir()

    def run(self, *task: str, sha: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BARE_PYTHON, "-I", "host.pyz", "bundle.zip", sha or self.digest,
                               str(self.project.config_path), str(self.project.root), "--",
                               *task], cwd=self.work,
                              env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60, check=False)


def test_the_zipapp_runs_on_a_bare_python(project: Project, tmp_path: Path) -> None:
    """The shipped host side runs under a Python without jinja2 or invoke: it unpacks the
    bundle and deploys into its own state dir; a wrong bundle sha256 is refused."""
    project.write({"bin/a": "#!/bin/sh\necho a\n"})
    project.configure(base=on_host_config(project.config_path.read_text()))
    host = HostRun(project, tmp_path)

    wrong = host.run("deploy.scripts", sha="0" * 64)
    done = host.run("deploy.scripts", "--json")

    assert wrong.returncode == 1 and "not received whole" in wrong.stderr
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run"] == 1
    assert (host.home / "host-bin/a").read_text() == "#!/bin/sh\necho a\n"
    assert json.loads((host.work / "result.json").read_text()) == {"run": 1}
    assert hashlib.sha256(host.shipped.path.read_bytes()).hexdigest() == host.shipped.sha256


def test_the_bundled_framework_template_travels_with_the_bundle(project: Project,
                                                                 tmp_path: Path) -> None:
    """``framework.template = "bundled"`` lies outside the project: the bundle carries it
    under its own folder, and the host side (a bare Python, whose zipapp holds code only)
    installs exactly the controller's shipped template."""
    project.configure(base=on_host_config(BASE_CONFIG.replace('"tpl/CLAUDE.md"', '"bundled"')))
    host = HostRun(project, tmp_path)
    with zipfile.ZipFile(host.work / "bundle.zip") as archive:
        assert f"{bundle.BUNDLED}/CLAUDE.md" in archive.namelist()

    done = host.run("deploy.framework")

    assert done.returncode == 0, done.stderr
    assert (host.home / "host-framework/CLAUDE.md").read_bytes() == \
        (REPO / "templates/framework/CLAUDE.md").read_bytes()


def test_a_relative_target_is_refused_on_a_host(project: Project, tmp_path: Path) -> None:
    """On a host the checkout is a temporary folder: a target or state dir relative to it
    would be deployed into it and removed, so the host side refuses it (exit 2)."""
    done = project.invoke("history", env={"DEPLOY_BUNDLE_ROOT": str(project.root)})

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "tool.deploy.state_dir is relative to the checkout")


@pytest.mark.parametrize(("line", "shown"), [
    pytest.param("settle it with `claude-pm-deploy templates.adopt` or `invoke deploy "
                 "--on-conflict keep`", "settle it with `invoke templates.adopt --hosts h1` or "
                 "`invoke deploy --on-conflict keep --hosts h1`", id="backticks"),
    pytest.param("last verify: never (claude-pm-deploy backups.verify)",
                 "last verify: never (invoke backups.verify --hosts h1)", id="parentheses"),
    pytest.param("see `claude-pm-deploy history | head`", "see `invoke history --hosts h1 | head`",
                 id="pipe"),
    pytest.param("check `claude-pm-deploy versions.show`", "check `invoke versions.show`",
                 id="a-task-without-hosts"),
    pytest.param("`invoke history --hosts h2`", "`invoke history --hosts h2`", id="already"),
    pytest.param("(see `claude-pm-deploy history)", "(see `claude-pm-deploy history)",
                 id="unbalanced"),
])
def test_a_hint_on_a_host_names_the_controllers_command(line: str, shown: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """On a host, a hint typed as printed would act on the controller's own tree: it names
    the controller's command and ``--hosts`` with this host, where the task takes it."""
    from deploy_tasks.output import Output, hinted
    from deploy_tasks.remote.hostside import _hosts_tasks

    tasks = _hosts_tasks()
    monkeypatch.setattr(Output, "host", ("h1", "invoke", tasks))

    assert {"deploy", "deploy.all", "history", "templates.adopt"} <= tasks
    assert not {"versions.show", "backups.migrate"} & tasks
    assert hinted(line) == shown


def test_task_argv_carries_every_given_flag() -> None:
    """What a host runs: the task's dotted name and each flag given, as ``--flag=value``
    (a value starting with ``-`` is never read as a flag), defaults and host flags left out."""
    from deploy_tasks.collection import ns
    from deploy_tasks.remote.fleet import task_argv

    argv = task_argv(ns["deploy.scripts"], {"name": ["a", "-b"], "on_conflict": "fail",
                                            "dry_run": True, "json_": False, "wait": 5,
                                            "prefix": None})
    undo = task_argv(ns["rollback.release"], {"run": 3, "force": True, "json_": True})

    assert argv == ["deploy.scripts", "--name=a", "--name=-b", "--dry-run", "--wait=5"]
    assert undo == ["rollback.release", "--run=3", "--force", "--json"]


def test_task_argv_passes_verbose_and_quiet_to_the_host() -> None:
    """--verbose (every task) and --quiet (writing tasks) are the task layer's own flags, not
    the body's: they reach each host as well."""
    from deploy_tasks.collection import ns
    from deploy_tasks.remote.fleet import task_argv

    loud = task_argv(ns["deploy.scripts"], {"verbose": True, "quiet": True})
    reading = task_argv(ns["history.show"], {"verbose": True, "quiet": True})

    assert loud == ["deploy.scripts", "--verbose", "--quiet"]
    assert reading == ["history", "--verbose"]


@pytest.mark.parametrize(("line", "shown"), [
    pytest.param("run 1: deploy, 2 change(s)", "run 1: deploy, 2 change(s)", id="plain"),
    pytest.param("::group::2 changes", "::group::2 changes", id="group-kept"),
    pytest.param("::endgroup::", "::endgroup::", id="endgroup-kept"),
    pytest.param("::add-mask::x", ": :add-mask::x", id="command-defused"),
    pytest.param("error: forged\x1b[2J", "error: forged\\x1b[2J", id="escape-shown"),
])
def test_a_hosts_output_cannot_forge_the_runners_log(line: str, shown: str) -> None:
    """A host's stdout reaches the runner's log escaped, and only its own groups stay
    workflow commands."""
    from deploy_tasks.remote.fleet import _from_host

    assert _from_host(line) == shown


@pytest.mark.parametrize(("stdout", "problem"), [
    pytest.param("3.11\n/tmp/claude-pm-deploy.ab12\n", None, id="3.11"),
    pytest.param("Welcome!\n3.13\n/tmp/claude-pm-deploy.ab12\n", None, id="banner-first"),
    pytest.param("3.9\n/tmp/claude-pm-deploy.ab12\n",
                 "host h1: python3 is 3.9; the host side needs Python >= 3.11", id="too-old"),
    pytest.param("3.x\n/tmp/claude-pm-deploy.ab12\n", "host h1: python3 said its version is '3.x'",
                 id="odd-version"),
    pytest.param("", "host h1: the probe's answer was not a Python version and a folder",
                 id="nothing"),
])
def test_the_probe_refuses_a_python_older_than_311(stdout: str, problem: str | None) -> None:
    """A host's ``python3`` must be 3.11 or newer; the error names the host and the version
    (the folder the probe made is still known, so it is removed)."""
    from deploy_tasks.remote.ssh import probed

    tmp, found = probed("h1", stdout)

    assert found == problem
    assert tmp == (None if not stdout else "/tmp/claude-pm-deploy.ab12")


def test_every_package_is_in_the_wheel() -> None:
    """``[tool.setuptools.packages.find]`` takes every package of ``deploy`` and
    ``deploy_tasks``: the installed command (the SSH workflow's) needs deploy_tasks.remote."""
    import fnmatch
    import tomllib

    from tests.conftest import REPO

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    packages = [".".join(p.parent.relative_to(REPO).parts)
                for top in ("deploy", "deploy_tasks") for p in (REPO / top).rglob("__init__.py")]

    assert "deploy_tasks.remote" in packages
    assert [p for p in packages if not any(fnmatch.fnmatch(p, g) for g in include)] == []


def test_compression_on_a_host_without_zstandard_is_refused(project: Project,
                                                            tmp_path: Path) -> None:
    """zstandard is compiled, so the zipapp cannot carry it: a host without it refuses
    ``compression_enabled`` (exit 2) before anything is planned. Run by a bare Python."""
    if os.access(BARE_PYTHON, os.X_OK) and subprocess.run(
            [BARE_PYTHON, "-I", "-c", "import zstandard"], capture_output=True,
            check=False).returncode == 0:
        pytest.skip(f"{BARE_PYTHON} has zstandard")
    project.configure(base=on_host_config(project.config_path.read_text(),
                                          "[tool.deploy.backup]\ncompression_enabled = true\n"))

    done = HostRun(project, tmp_path).run("history")

    assert done.returncode == 2, done.stderr
    assert_one_error_line(done.stderr, "compression_enabled needs the zstandard package")


@given(st.dictionaries(st.sampled_from(("run", "changed", "outcome", "undo")), st.text()))
def test_a_hosts_outputs_read_back_as_written(values: dict[str, str]) -> None:
    """What a host side writes to its GITHUB_OUTPUT file reads back exactly, whatever the
    values hold (newlines, ``name=value`` lines, ``<<``)."""
    from deploy_tasks.actions import outputs
    from deploy_tasks.remote.outputs import parse

    assert parse(outputs(values)) == values


def host(name: str, code: int, **outputs_: str) -> Any:
    from deploy_tasks.actions import outputs
    from deploy_tasks.remote.ssh import Outcome

    return Outcome(name, code, outputs=outputs(outputs_) if outputs_ else "")


@pytest.mark.parametrize(("hosts_", "code", "outcome", "changed", "undo"), [
    pytest.param([host("a", 0, run="3", changed="2", outcome="changed",
                       undo="invoke rollback.release --run 3 --hosts a"),
                  host("b", 0, run="", changed="0", outcome="unchanged", undo="")],
                 0, "changed", "2", "invoke rollback.release --run 3 --hosts a", id="one-changed"),
    pytest.param([host("a", 0, run="3", changed="1", outcome="changed", undo="u a"),
                  host("b", 3, run="", changed="0", outcome="blocked", undo="")],
                 3, "blocked", "1", "u a", id="the-worst-hosts-outcome"),
    pytest.param([host("a", 0, run="", changed="0", outcome="dry-run", undo=""),
                  host("b", 0, run="", changed="0", outcome="dry-run", undo="")],
                 0, "dry-run", "0", "", id="dry-run"),
    pytest.param([host("a", 0, run="5", changed="1", outcome="changed", undo="u a"),
                  host("b", 1)], 1, "failed", "1", "u a", id="unreachable-is-failed"),
    pytest.param([host("a", 4)], 4, "locked", "0", "", id="locked-without-outputs"),
])
def test_the_commands_outputs_fold_the_hosts(hosts_: list[Any], code: int, outcome: str,
                                             changed: str, undo: str) -> None:
    """One set of outputs for the command: the worst host's outcome (or changed when any
    host changed), every host's changes, one undo line per changed host, and the hosts."""
    from deploy_tasks.remote.outputs import combined

    got = combined(hosts_, code)

    assert (got["run"], got["outcome"], got["changed"], got["undo"]) == \
        ("", outcome, changed, undo)
    per_host = json.loads(got["hosts"])
    assert list(per_host) == [h.host for h in hosts_]
    assert all(per_host[h.host]["exit_code"] == h.code for h in hosts_)


def test_a_host_rolled_back_by_all_or_none_leaves_nothing_to_undo() -> None:
    from deploy_tasks.remote.outputs import combined

    a = host("a", 0, run="5", changed="1", outcome="changed", undo="u a")
    a.extra["rolled_back"] = {"run": 6, "undoes": 5, "exit_code": 0}
    got = combined([a, host("b", 3, outcome="blocked", changed="0")], 3)

    assert (got["outcome"], got["undo"]) == ("blocked", "")
    assert json.loads(got["hosts"])["a"]["rolled_back"] is True


def build_zipapp(home: Path) -> str:
    """``pyz.build()`` in a fresh process whose home is ``home``: the sha256 it ships."""
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    done = subprocess.run([sys.executable, "-c", "from deploy_tasks.remote import pyz; "
                           "print(pyz.build().sha256)"], env={**env, "HOME": str(home)},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_the_controller_builds_the_host_side_once(tmp_path: Path) -> None:
    """The built zipapp is kept in the user's ~/.cache (0600 in a 0700 folder) and the next
    command ships a copy of it; a cached file others could write is not trusted: it is
    built again, to the same bytes (the build is reproducible), and replaced."""
    fresh = build_zipapp(tmp_path)
    cache = tmp_path / ".cache/claude-pm-deploy"
    [cached] = cache.glob("host-*.pyz")
    assert (cache.stat().st_mode & 0o777, cached.stat().st_mode & 0o777) == (0o700, 0o600)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == fresh

    cached.write_bytes(cached.read_bytes() + b"\0")  # this user's own edit: it is used
    edited = hashlib.sha256(cached.read_bytes()).hexdigest()
    used = build_zipapp(tmp_path)
    cached.chmod(0o620)  # writable by the group: built again and replaced
    rebuilt = build_zipapp(tmp_path)

    assert used == edited != fresh
    assert rebuilt == fresh == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert cached.stat().st_mode & 0o777 == 0o600


def test_the_cache_key_is_every_file_carried(tmp_path: Path) -> None:
    from deploy_tasks.remote.pyz import cache_key

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    key = cache_key([("p/a.py", a), ("p/b.py", b)])

    assert cache_key([("p/a.py", a), ("p/b.py", b)]) == key
    assert cache_key([("p/b.py", a), ("p/a.py", b)]) != key  # names count
    b.write_text("y = 3\n")
    assert cache_key([("p/a.py", a), ("p/b.py", b)]) != key
