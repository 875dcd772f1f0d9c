"""The step outputs of a writing task run with ``--hosts`` under GitHub Actions.

Each host side writes its own outputs (``deploy_tasks.actions.outputs``: ``run``,
``changed``, ``outcome``, ``undo``) into its run's folder; the controller reads them back
with the host's other results and writes one set for the whole command:

- ``outcome``: the outcome of the host whose exit code the command exits with (the most
  severe, ``deploy.hosts.worst``); when every host exited 0, ``changed`` if any host
  changed, else ``dry-run`` or ``unchanged``;
- ``changed``: the changes of every host together;
- ``run``: empty (each host numbers its own runs: see ``hosts``);
- ``undo``: one line per host left changed, each ``... rollback.release --run N --hosts H``;
- ``hosts``: a JSON object, per host ``{"run", "changed", "outcome", "undo", "exit_code"}``,
  plus ``"rolled_back": true`` for a host ``--all-or-none`` rolled back.

A host that gave no outputs (unreachable, lost, too old a Python) is ``failed``. A host's
values are written again through ``actions.outputs``, so no host can forge an output line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy_tasks.remote.ssh import Outcome

LOCKED = 4
BLOCKED = 3


def parse(text: str) -> dict[str, str]:
    """The outputs in ``text``, as ``actions.outputs`` writes them: ``name=value`` lines and
    ``name<<DELIMITER`` blocks (the value's lines, then the delimiter alone on a line)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        equals, heredoc = line.find("="), line.find("<<")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2:]
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            i += 1  # the delimiter
            values[name] = "\n".join(body)
        elif equals > 0:
            values[line[:equals]] = line[equals + 1:]
    return values


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def host_values(outcome: Outcome) -> dict[str, Any]:
    """One host's outputs, as the ``hosts`` object shows them."""
    got = parse(outcome.outputs) if outcome.outputs else {}
    rolled = outcome.extra.get("rolled_back", {}).get("exit_code") == 0
    value: dict[str, Any] = {
        "run": int(got["run"]) if got.get("run", "").isdigit() else outcome.run,
        "changed": _count(got.get("changed")),
        "outcome": got.get("outcome") or _fallback(outcome.code),
        "undo": "" if rolled else got.get("undo", ""),
        "exit_code": outcome.code,
    }
    if rolled:
        value["rolled_back"] = True
    return value


def _fallback(code: int) -> str:
    if code == 0:
        return "unchanged"
    return {LOCKED: "locked", BLOCKED: "blocked"}.get(code, "failed")


def combined(outcomes: Sequence[Outcome], code: int) -> dict[str, str]:
    """The command's outputs from its hosts' (``code``: the exit code it ends with)."""
    hosts = {o.host: host_values(o) for o in outcomes}
    if code != 0:
        worst = next((v for v in hosts.values() if v["exit_code"] == code), None)
        outcome = worst["outcome"] if worst is not None else _fallback(code)
    elif any(v["changed"] and not v.get("rolled_back") for v in hosts.values()):
        outcome = "changed"
    elif hosts and all(v["outcome"] == "dry-run" for v in hosts.values()):
        outcome = "dry-run"
    else:
        outcome = "unchanged"
    return {"run": "", "changed": str(sum(v["changed"] for v in hosts.values())),
            "outcome": outcome,
            "undo": "\n".join(v["undo"] for v in hosts.values() if v["undo"]),
            "hosts": json.dumps(hosts, sort_keys=True)}
