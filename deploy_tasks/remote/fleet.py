"""``--hosts``: one task on many hosts, in parallel, each with its own tree (issue 15).

The controller reads the config, builds the zipapp and the bundle once, and hands each host
to ``ssh.run_host`` in a thread pool of ``--parallel`` workers. Output is a section per host
in the order named (``== host ==`` and that host's own output); ``--json`` is one document
``{"hosts": {host: its document or {"error": ...}}}``. The exit code is the most severe of
the hosts' (``deploy.hosts.SEVERITY``). With ``--all-or-none`` a failure anywhere also rolls
back, on every host that changed, the run this command made there.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from invoke import Context, Task

from deploy_tasks import actions, common
from deploy_tasks.common import Record, echo, emit_json, shown
from deploy_tasks.flags import HOST_FLAGS, full_name, is_connection
from deploy_tasks.remote.ssh import Outcome, run_host


def task_argv(task: Task[Any], kwargs: dict[str, Any]) -> list[str]:
    """The command line that runs ``task`` with ``kwargs`` on a host (flags in ``--x=v``
    form, so no value is ever read as a flag)."""
    argv = [full_name(task)]
    params = list(inspect.signature(task.body).parameters.values())[1:]
    for param in params:
        if param.name in HOST_FLAGS or param.name not in kwargs:
            continue
        value = kwargs[param.name]
        if value is None or value == param.default or value == []:
            continue
        flag = "--" + param.name.strip("_").replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, list):
            argv += [f"{flag}={item}" for item in value]
        else:
            argv.append(f"{flag}={value}")
    # The task layer's own flags (DeployTask.get_arguments), which no body declares.
    if kwargs.get("verbose"):
        argv.append("--verbose")
    if kwargs.get("quiet") and getattr(task, "takes_dry_run", False):
        argv.append("--quiet")
    return argv


def _document(outcome: Outcome) -> Record:
    if outcome.error is None:
        try:
            parsed = json.loads(outcome.stdout)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return {**parsed, **outcome.extra}
    message = outcome.error or _last_error(outcome.stderr) or f"exit {outcome.code}"
    return {"error": {"message": message, "exit_code": outcome.code,
                      **({"state": "unknown"} if outcome.lost else {})}, **outcome.extra}


def _last_error(stderr: str) -> str | None:
    lines = [ln[len("error: "):] for ln in stderr.splitlines() if ln.startswith("error: ")]
    return lines[-1] if lines else None


# What a host may print at the start of a line of the runner's log: its own folding of a
# long listing. Any other workflow command (`::error`, `::add-mask`, `::stop-commands`) is
# the controller's to give, so a host's is shown defused.
HOST_COMMANDS = ("::group::", "::endgroup::")


def _from_host(line: str) -> str:
    """One line of a host's output as the controller shows it: escaped like every name
    (the host escaped it already; a host that did not cannot forge a line), and a workflow
    command other than a group defused (``: :error``)."""
    line = shown(line)
    if line.startswith("::") and not line.startswith(HOST_COMMANDS):
        return ": :" + line[2:]
    return line


def _print(outcome: Outcome, *, sections: bool = True) -> None:
    """A host's section (``== host ==`` and its output); its error lines on stderr, each
    naming the host (also under ``--json``, whose documents go to stdout at the end)."""
    if sections:
        echo(f"== {outcome.host} ==")
    if outcome.stdout and sections:
        for line in outcome.stdout.splitlines():
            common.write_text(_from_host(line) + "\n")
    for line in outcome.stderr.splitlines():
        if line.startswith("::"):
            continue  # the host's own workflow commands: report_error below makes ours
        if line.startswith("error: "):
            common.report_error(f"host {outcome.host}: {line[len('error: '):]}")
        elif line.strip():
            echo(line, err=True)
    if outcome.error is not None:
        common.report_error(outcome.error)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if outcome.summary and summary and os.environ.get("GITHUB_ACTIONS") == "true":
        # The host's section names its undo as typed here (`... --hosts NAME`).
        name = shown(outcome.host).replace("`", "")
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(f"## host `{name}`\n\n{outcome.summary}")


def run_task(task: Task[Any], c: Context, kwargs: dict[str, Any], *, hosts: str | None,
             parallel: int, all_or_none: bool) -> int:
    """Run ``task`` with ``kwargs`` on the named hosts (or on ``c``, a Fabric Connection);
    return the exit code (``deploy.hosts.worst`` of the hosts')."""
    from deploy import bundle as bundles
    from deploy import hosts as naming
    from deploy_tasks.remote import pyz

    cfg = common.settings(None)  # the sources; each host stages its own targets (--prefix)
    targets: list[Any] = [c] if hosts is None and is_connection(c) else \
        list(naming.expand(hosts or "", cfg.hosts))
    json_ = bool(kwargs.get("json_"))
    argv = task_argv(task, kwargs)
    shipped = pyz.build()
    bundle_path = pyz.scratch() / f"bundle-{len(list(pyz.scratch().iterdir()))}.zip"
    bundle = pyz.Shipped(bundle_path, bundles.build(cfg, bundle_path))
    check = common._command

    def one(target: Any, words: list[str]) -> Outcome:
        return run_host(target, words, pyz=shipped, bundle=bundle, project=str(cfg.path),
                        origin=str(cfg.path.resolve().parent), check_command=check,
                        cache=not kwargs.get("dry_run"))

    outcomes = _each(targets, lambda t: one(t, argv), parallel,
                     show=lambda o: _print(o, sections=not json_))
    failed = [o for o in outcomes if o.code != 0]
    if all_or_none and failed and not kwargs.get("dry_run"):
        _undo_the_others(targets, outcomes, failed, lambda t, w: one(t, w), parallel, json_)
    code = _exit_code(outcomes)
    output = os.environ.get("GITHUB_OUTPUT")
    if output and actions.active() and getattr(task, "takes_dry_run", False):  # it writes
        from deploy_tasks.remote.outputs import combined

        actions.append(output, actions.outputs(combined(outcomes, code)))
    if json_:
        emit_json({"hosts": {o.host: _document(o) for o in outcomes}, "exit_code": code})
    if failed:
        names = ", ".join(f"{o.host} (exit {o.code}{', unknown' if o.lost else ''})"
                          for o in failed)
        common.report_error(f"{len(failed)} of {len(outcomes)} host(s) exited non-zero: {names}")
    return code


def _exit_code(outcomes: list[Outcome]) -> int:
    from deploy.hosts import worst

    return worst([o.code for o in outcomes]
                 + [int(o.extra["rolled_back"]["exit_code"]) for o in outcomes
                    if "rolled_back" in o.extra])


def _each(targets: list[Any], work: Callable[[Any], Outcome], parallel: int, *,
          show: Callable[[Outcome], None] | None) -> list[Outcome]:
    """``work`` on every target, ``parallel`` at a time; shown (when asked) in order as they
    finish. A Ctrl-C (SIGINT) starts no further host and waits for the running ones, each
    all or nothing on its own; the hosts never started are exit 130, "not started"."""
    from concurrent.futures import CancelledError

    from deploy_tasks.remote.ssh import host_name

    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets))))
    futures = [pool.submit(work, t) for t in targets]
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        for target, future in zip(targets, futures, strict=True):
            try:
                outcome = future.result()
            except KeyboardInterrupt:
                interrupted = True
                for pending in futures:
                    pending.cancel()
                running = [host_name(t) for t, f in zip(targets, futures, strict=True)
                           if f.running()]
                echo(f"interrupted: waiting for {', '.join(running) or 'no host'} to finish "
                     "(each all or nothing); no further host starts", err=True)
                outcome = _after_interrupt(target, future)
            except CancelledError:
                outcome = Outcome(host_name(target), 130,
                                  error=f"host {host_name(target)}: not started: interrupted")
            if show is not None:
                show(outcome)
            outcomes.append(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if interrupted and show is not None:
        common.report_error("interrupted: the hosts already running finished (each all or "
                            "nothing); no other host was started")
    return outcomes


def _after_interrupt(target: Any, future: Any) -> Outcome:
    """The outcome of the host that was running when Ctrl-C came: its run finishes."""
    from concurrent.futures import CancelledError

    from deploy_tasks.remote.ssh import host_name

    try:
        result: Outcome = future.result()
        return result
    except CancelledError:
        return Outcome(host_name(target), 130,
                       error=f"host {host_name(target)}: not started: interrupted")


def _undo_the_others(targets: list[Any], outcomes: list[Outcome], failed: list[Outcome],
                     work: Callable[[Any, list[str]], Outcome], parallel: int,
                     json_: bool) -> None:
    """``--all-or-none``: roll back, on each host that made a run, that run; say so per host."""
    because = [o.host for o in failed]
    changed = [(t, o) for t, o in zip(targets, outcomes, strict=True)
               if o.code == 0 and o.run is not None]
    for o in outcomes:
        if o.code == 0 and o.run is None:
            o.extra["rolled_back"] = {"run": None, "undoes": None, "because": because,
                                      "exit_code": 0, "message": "nothing had changed"}
    if not changed:
        return
    undone = _each([t for t, _ in changed],
                   lambda t: work(t, ["rollback.release", f"--run={_run_of(t, changed)}"]),
                   parallel, show=None)
    for (_t, o), u in zip(changed, undone, strict=True):
        message = (f"rolled back run {o.run} as run {u.run} because {', '.join(because)} "
                   "failed" if u.code == 0 else
                   f"rolling back run {o.run} failed: {u.error or _last_error(u.stderr)}")
        o.extra["rolled_back"] = {"run": u.run, "undoes": o.run, "because": because,
                                  "exit_code": u.code, "message": message}
        if not json_:
            echo(f"== {o.host} ==")
            if u.code == 0:
                echo(message)
            else:
                common.report_error(f"host {o.host}: {message}")


def _run_of(target: Any, changed: list[tuple[Any, Outcome]]) -> int | None:
    for t, o in changed:
        if t is target:
            return o.run
    return None

