"""``fab -H a,b TASK`` as ``invoke TASK --hosts a,b`` (issue 15).

Fabric's own executor calls a task once per host, each call with a ``fabric.Connection`` as
its context, one after another, and stops at the first host that fails. A task here notices
such a context and runs on that host (``DeployTask.__call__``), but then ``fab`` would give
neither ``--parallel``, nor one ``--json`` document, nor the exit-code rule, nor
``--all-or-none``. So ``fabric.json`` beside ``fabfile.py`` names this executor: a call of a
task that takes ``--hosts`` becomes one call with ``--hosts`` set to ``-H``'s list (unless the
command line gave ``--hosts`` itself), which the task runs as ``invoke`` would. Every other
task keeps Fabric's per-host calls.
"""

from __future__ import annotations

import gc
from typing import Any

from fabric import Executor
from invoke import Call, Task


class HostsExecutor(Executor):  # type: ignore[misc]  # fabric has no type hints
    def expand_calls(self, calls: list[Any], apply_hosts: bool = True) -> list[Any]:
        host_str = self.core[0].args.hosts.value if apply_hosts else None
        if not host_str:
            return list(super().expand_calls(calls, apply_hosts))
        out: list[Any] = []
        for call in calls:
            if isinstance(call, Task):
                call = Call(task=call)
            if getattr(call.task, "host_flags", ()):
                out.extend(super().expand_calls(call.pre, apply_hosts=False))
                call.kwargs = {**call.kwargs, "hosts": call.kwargs.get("hosts") or host_str}
                out.append(call)
                out.extend(super().expand_calls(call.post, apply_hosts=False))
            else:
                out.extend(super().expand_calls([call], apply_hosts))
        return out

    def execute(self, *tasks: Any) -> Any:
        gc.freeze()  # as deploy_tasks.executor.FreezingExecutor does for invoke
        return super().execute(*tasks)
